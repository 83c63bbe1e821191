//! A dotenv file as lines to keep: comments, blank lines and order stay as
//! they are, and each assignment's value is parsed by `dotenvy` (quotes,
//! escapes, `export`, multi-line values) from the assignment's own text.
//! This module finds where each assignment starts and ends; dotenvy
//! decides what its value is.

use zeroize::Zeroizing;

/// One piece of a dotenv file, in file order (no `Debug`: a value may be
/// a secret).
pub enum Entry {
    /// A comment or blank line, kept byte for byte (with its newline).
    Verbatim(String),
    /// `[export ]NAME=VALUE[ # comment]`.
    Var(Var),
}

/// One assignment (no `Debug`: its value may be a secret).
pub struct Var {
    /// `export ` when the line had it.
    pub export: bool,
    /// The variable's name.
    pub name: String,
    /// The value, as dotenvy reads it.
    pub value: Zeroizing<String>,
    /// The assignment as written (every line of it, with the newline).
    pub raw: Zeroizing<String>,
    /// A comment after the value (with the spaces before it), or empty.
    pub trailing_comment: String,
    /// The value is unquoted or double-quoted and has an unescaped `$`,
    /// which dotenv files substitute.
    pub substitutes: bool,
}

/// A dotenv file's pieces (no `Debug`: values may be secrets).
#[derive(Default)]
pub struct Layout {
    /// In file order.
    pub entries: Vec<Entry>,
}

/// Why a file is not a dotenv file.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct LayoutError {
    /// 1-based line of the assignment.
    pub line: usize,
    /// What is wrong (never the value).
    pub why: String,
}

impl Layout {
    /// Splits `text` into entries.
    pub fn parse(text: &str) -> Result<Self, LayoutError> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut entries = Vec::new();
        let mut index = 0;
        while index < lines.len() {
            let line = lines[index];
            let trimmed = line.trim_start();
            if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
                entries.push(Entry::Verbatim(line.to_owned()));
                index += 1;
                continue;
            }
            let first_line = index + 1;
            let (var, next) = assignment(&lines, index).map_err(|why| LayoutError {
                line: first_line,
                why,
            })?;
            entries.push(Entry::Var(var));
            index = next;
        }
        Ok(Self { entries })
    }

    /// The assignments, in order.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Var(var) => Some(var),
            Entry::Verbatim(_) => None,
        })
    }

    /// Adds an assignment of `name` at the end, empty (its line is given
    /// when rendering), after a newline if the file lacked a last one.
    pub fn append(&mut self, name: &str) {
        let ends_open = self.entries.last().is_some_and(|entry| match entry {
            Entry::Verbatim(text) => !text.ends_with('\n'),
            Entry::Var(var) => !var.raw.ends_with('\n'),
        });
        if ends_open {
            self.entries.push(Entry::Verbatim("\n".to_owned()));
        }
        self.entries.push(Entry::Var(Var {
            export: false,
            name: name.to_owned(),
            value: Zeroizing::new(String::new()),
            raw: Zeroizing::new(String::new()),
            trailing_comment: String::new(),
            substitutes: false,
        }));
    }

    /// The file's text back.
    pub fn render(&self, mut line_of: impl FnMut(&Var) -> Zeroizing<String>) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for entry in &self.entries {
            match entry {
                Entry::Verbatim(text) => out.push_str(text),
                Entry::Var(var) => out.push_str(&line_of(var)),
            }
        }
        out
    }
}

/// The assignment starting at `lines[start]`; returns it and the index of
/// the line after it.
fn assignment(lines: &[&str], start: usize) -> Result<(Var, usize), String> {
    let first = lines[start].trim_start();
    let (export, rest) = match first.strip_prefix("export ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, first),
    };
    let Some(eq) = rest.find('=') else {
        return Err("expected NAME=VALUE".to_owned());
    };
    let name = rest[..eq].trim_end();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err("a variable name is letters, digits, _ and . only".to_owned());
    }
    // The value's text from here on, across lines when quoted.
    let mut text = rest[eq + 1..].trim_start().to_owned();
    let mut next = start + 1;
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'');
    let value_end = loop {
        match quote.map_or(Some(unquoted_end(&text)), |q| closing_quote(&text, q)) {
            Some(end) => break end,
            None if next < lines.len() => {
                text.push_str(lines[next]);
                next += 1;
            }
            None => return Err("a quoted value is not closed".to_owned()),
        }
    };
    let raw: String = lines[start..next].concat();
    let after = text[value_end..].trim_end_matches(['\n', '\r']);
    let trailing_comment = if after.trim_start().starts_with('#') {
        after.to_owned()
    } else if after.trim().is_empty() {
        String::new()
    } else {
        return Err("unexpected text after the value".to_owned());
    };
    let value = parse_value(name, &text[..value_end])?;
    let substitutes = quote != Some('\'') && has_unescaped_dollar(&text[..value_end]);
    Ok((
        Var {
            export,
            name: name.to_owned(),
            value,
            raw: Zeroizing::new(raw),
            trailing_comment,
            substitutes,
        },
        next,
    ))
}

/// Where an unquoted value ends: before ` #` or at the end of the line.
fn unquoted_end(text: &str) -> usize {
    let line_end = text.find('\n').unwrap_or(text.len());
    let line = &text[..line_end];
    line.find(" #")
        .or_else(|| line.find("\t#"))
        .unwrap_or(line.trim_end_matches('\r').len())
}

/// The index just after the quote closing the one `text` starts with, if
/// `text` has it (a backslash escapes the next character in double quotes).
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote == '"' {
            escaped = true;
        } else if c == quote {
            return Some(i + 1);
        }
    }
    None
}

fn has_unescaped_dollar(text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '$' {
            return true;
        }
    }
    false
}

/// The value of `NAME=<value_text>` as dotenvy reads it. The name is
/// replaced by a fixed one, so no variable of the environment can leak in
/// through a substitution of the name.
fn parse_value(name: &str, value_text: &str) -> Result<Zeroizing<String>, String> {
    let line = Zeroizing::new(format!("V={value_text}\n"));
    let mut items = dotenvy::from_read_iter(line.as_bytes());
    match items.next() {
        Some(Ok((_, value))) => Ok(Zeroizing::new(value)),
        // dotenvy's error quotes the line: keep only where it failed.
        Some(Err(dotenvy::Error::LineParse(_, at))) => Err(format!(
            "{name}: the value cannot be read (character {at}); quote it"
        )),
        Some(Err(_)) | None => Err(format!("{name}: the value cannot be read; quote it")),
    }
}

/// `value` written so that dotenvy reads back exactly `value`: single
/// quotes when it has none (nothing is escaped there), else double
/// quotes with `\`, `"` and `$` escaped.
pub fn quote(value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 2));
    if !value.contains('\'') {
        out.push('\'');
        out.push_str(value);
        out.push('\'');
        return out;
    }
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `[export ]NAME=VALUE_TEXT[ # comment]\n` for `var` with new value text.
pub fn assignment_line(var: &Var, value_text: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{}{}={value_text}{}\n",
        if var.export { "export " } else { "" },
        var.name,
        var.trailing_comment
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# database\n\nexport DB_USER=app\nDB_PASS='p@ss $word \"x\"'\nNOTE=\"it's \\\"quoted\\\"\\nnext\"\nEMPTY=\nMULTI=\"line one\nline two\"\nUNICODE='grüße ✓'\nWITH_COMMENT=v1 # keep me\nLAST=x";

    fn values(layout: &Layout) -> Vec<(String, String)> {
        layout
            .vars()
            .map(|v| (v.name.clone(), v.value.to_string()))
            .collect()
    }

    #[test]
    fn values_are_what_dotenvy_reads_and_layout_is_kept() {
        let layout = Layout::parse(FILE).expect("parses");
        assert_eq!(
            values(&layout),
            [
                ("DB_USER", "app"),
                ("DB_PASS", "p@ss $word \"x\""),
                ("NOTE", "it's \"quoted\"\nnext"),
                ("EMPTY", ""),
                ("MULTI", "line one\nline two"),
                ("UNICODE", "grüße ✓"),
                ("WITH_COMMENT", "v1"),
                ("LAST", "x"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let same = layout.render(|var| var.raw.clone());
        assert_eq!(
            same.as_str(),
            FILE,
            "rendering the raw lines gives the file back"
        );
        let with_comment = layout
            .vars()
            .find(|v| v.name == "WITH_COMMENT")
            .expect("var");
        assert_eq!(with_comment.trailing_comment, " # keep me");
        assert!(layout.vars().next().is_some_and(|v| v.export));
    }

    #[test]
    fn quoting_gives_back_every_value_exactly() {
        for value in [
            "",
            "plain",
            "it's",
            "a \"b\" $c \\d 'e'",
            "multi\nline 'q'",
            "grüße ✓ $HOME",
            "back\\slash'",
        ] {
            let line = format!("X={}\n", quote(value).as_str());
            let layout = Layout::parse(&line).expect("parses");
            let read = layout.vars().next().expect("var");
            assert_eq!(read.value.as_str(), value, "{line}");
            assert!(!read.substitutes, "{line}");
        }
    }

    #[test]
    fn substitution_and_bad_lines_are_flagged() {
        let layout =
            Layout::parse("A=$HOME\nB=\"x${Y}\"\nC='$lit'\nD=\"\\$esc\"\n").expect("parses");
        let flags: Vec<bool> = layout.vars().map(|v| v.substitutes).collect();
        assert_eq!(flags, [true, true, false, false]);
        for bad in [
            "JUST TEXT\n",
            "A=\"open\n",
            "=x\n",
            "A B=c\n",
            "A='x' trailing\n",
        ] {
            assert!(Layout::parse(bad).is_err(), "{bad:?}");
        }
        let error = Layout::parse("# c\nA=ok\nB=\"never closed\n")
            .err()
            .expect("refused");
        assert_eq!(error.line, 3);
    }
}
