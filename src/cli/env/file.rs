//! An env file as tresor reads and writes it: an optional header line,
//! then a [`Layout`]; helpers to open its sealed values and to write it
//! back with some lines replaced and every other line byte for byte.

use std::collections::BTreeMap;
use std::path::Path;

use zeroize::Zeroizing;

use super::crypt::{self, Sealed};
use super::layout::{Layout, Var, assignment_line, quote};
use super::value::{Header, SealedValue};
use crate::cli::failure::CliError;

/// A parsed env file (no `Debug`: it holds plaintext values).
pub struct EnvFile {
    /// The header, when the file has one (a file `tresor env encrypt` wrote).
    pub header: Option<Header>,
    /// Everything after the header.
    pub layout: Layout,
}

/// Reads a file as text; the error names the file, never its content.
pub fn read_text(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| CliError::refused(format!("cannot read {}: {e}", path.display())))?,
    );
    std::str::from_utf8(&bytes)
        .map(|text| Zeroizing::new(text.to_owned()))
        .map_err(|_| CliError::refused(format!("{} is not UTF-8 text", path.display())))
}

impl EnvFile {
    /// Parses `text` (from `path`, for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, CliError> {
        let bad = |why: String| CliError::refused(format!("{}: {why}", path.display()));
        let (header, body) = match text.split_inclusive('\n').next().map(Header::parse) {
            Some(Some(header)) => {
                let first_len = text.split_inclusive('\n').next().map_or(0, str::len);
                (Some(header.map_err(bad)?), &text[first_len..])
            }
            _ => (None, text),
        };
        let layout = Layout::parse(body).map_err(|e| {
            // Lines count from the file's first line, header included.
            let offset = usize::from(header.is_some());
            bad(format!("line {}: {}", e.line + offset, e.why))
        })?;
        Ok(Self { header, layout })
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        Self::parse(path, &read_text(path)?)
    }

    /// Reads `path`, which must be a file `tresor env encrypt` wrote.
    pub fn read_sealed(path: &Path) -> Result<(Self, Header), CliError> {
        let file = Self::read(path)?;
        let header = file.header.clone().ok_or_else(|| {
            CliError::refused(format!(
                "{} has no tresor-env header on its first line: make it with tresor env encrypt",
                path.display()
            ))
        })?;
        Ok((file, header))
    }

    /// The sealed values, with their contexts under `header`; a value
    /// that starts like one but is malformed is refused by name.
    pub fn sealed_vars(&self, header: &Header) -> Result<Vec<Sealed>, CliError> {
        sealed_values(self.layout.vars(), |name| header.context_of(name))
    }

    /// Opens every sealed value; the plaintexts by variable name.
    pub async fn open(
        &self,
        client: &tresor_client::Client,
        header: &Header,
    ) -> Result<BTreeMap<String, Zeroizing<String>>, CliError> {
        crypt::open_all(client, &self.sealed_vars(header)?).await
    }

    /// The file as plain dotenv text: the header left out, each sealed
    /// value replaced by its plaintext (quoted so it reads back exactly).
    pub fn plaintext(&self, opened: &BTreeMap<String, Zeroizing<String>>) -> Zeroizing<String> {
        self.layout.render(|var| match opened.get(&var.name) {
            Some(value) if SealedValue::is_sealed(&var.value) => {
                assignment_line(var, &quote(value))
            }
            _ => var.raw.clone(),
        })
    }

    /// The file's text with `replaced` lines (by variable name) and every
    /// other line as it was.
    pub fn render_with(&self, replaced: &BTreeMap<String, SealedValue>) -> Zeroizing<String> {
        let mut out = Zeroizing::new(self.header.as_ref().map(Header::line).unwrap_or_default());
        out.push_str(&self.layout.render(|var| match replaced.get(&var.name) {
            Some(sealed) => assignment_line(var, &sealed.encode()),
            None => var.raw.clone(),
        }));
        out
    }
}

/// The sealed values among `vars`, with the context `context_of` gives
/// each name.
pub fn sealed_values<'a>(
    vars: impl Iterator<Item = &'a Var>,
    context_of: impl Fn(&str) -> std::collections::HashMap<String, String>,
) -> Result<Vec<Sealed>, CliError> {
    vars.filter(|var| SealedValue::is_sealed(&var.value))
        .map(|var| {
            let sealed = SealedValue::parse(&var.value).ok_or_else(|| {
                CliError::refused(format!(
                    "{}: not a well-formed tresor:v1: value (cut or changed)",
                    var.name
                ))
            })?;
            Ok(Sealed {
                name: var.name.clone(),
                sealed,
                context: context_of(&var.name),
            })
        })
        .collect()
}

/// Refuses values a dotenv parser would substitute `$VAR` in.
pub fn refuse_substitutions(layout: &Layout, path: &Path) -> Result<(), CliError> {
    match layout.vars().find(|var| var.substitutes) {
        Some(var) => Err(CliError::refused(format!(
            "{}: {}: the value has a $ that dotenv files replace with another variable; put the value in single quotes to keep it as written",
            path.display(),
            var.name
        ))),
        None => Ok(()),
    }
}

/// Writes an env file (0600, atomically: readers see the old or the new
/// file; a symlink at `path` is replaced, never followed).
pub fn write(path: &Path, text: &str) -> Result<(), CliError> {
    crate::fs::write_private_file(path, text.as_bytes(), true)
        .map_err(|e| CliError::refused(format!("cannot write {}: {e}", path.display())))
}
