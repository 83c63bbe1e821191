//! Audit files on disk: the current file, rotated files named after the
//! sequence number of their first record, and where a log resumes.
//!
//! With `--audit-file /var/lib/tresor/audit.jsonl`, the current file is
//! `audit.jsonl` and rotated ones are `audit.jsonl.00000000000000000001`,
//! `audit.jsonl.00000000000000052417`... in the same directory; sorting
//! by that number gives the order of the chain.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{GENESIS, LineHash, peek_line};

/// The rotated name of `current` whose first record is `first_seq`.
pub fn rotated_name(current: &Path, first_seq: u64) -> PathBuf {
    let mut name = current.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{first_seq:020}"));
    current.with_file_name(name)
}

/// Every file of the log whose current file is `current`, in chain order:
/// rotated files by first sequence number, then the current file.
pub fn log_files(current: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match current.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = current
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_owned();
    let mut rotated = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some(suffix) = name
                    .strip_prefix(base.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                else {
                    continue;
                };
                if let Ok(seq) = suffix.parse::<u64>() {
                    rotated.push((seq, entry.path()));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, path)| path).collect();
    if current.exists() {
        files.push(current.to_path_buf());
    }
    Ok(files)
}

/// Where the next record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// Chain hash of the last record (GENESIS for a new log).
    pub prev: LineHash,
    /// First sequence number of the current file, if it holds records.
    pub current_first_seq: Option<u64>,
}

/// Complete lines of a file and the byte length they cover (a last line
/// without newline, from a crash in the middle of a write, is not counted).
fn complete_lines(path: &Path) -> io::Result<(Vec<Vec<u8>>, u64)> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut lines = Vec::new();
    let mut covered = 0u64;
    loop {
        let mut line = Vec::new();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        covered += read as u64;
        line.pop();
        lines.push(line);
    }
    Ok((lines, covered))
}

/// The sequence number of a file's first record, reading only that line.
pub fn first_seq(path: &Path) -> Option<u64> {
    let mut line = Vec::new();
    BufReader::new(File::open(path).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    peek_line(&line).map(|(seq, _)| seq)
}

fn last_line_of(path: &Path) -> io::Result<Option<Vec<u8>>> {
    // Rotated files end with a complete line; read backwards in one block
    // large enough for any record.
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(256 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        tail.pop();
    }
    let line = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => tail[i + 1..].to_vec(),
        None => tail,
    };
    Ok((!line.is_empty()).then_some(line))
}

/// Where the log continues after `line`, read without authenticating it:
/// the next sequence number and the line's chain hash. `None` if `line` is
/// not a record, or holds the last sequence number there can be
/// (`u64::MAX`), which nothing may follow.
pub fn position_after(line: &[u8]) -> Option<(u64, LineHash)> {
    let (seq, hash) = peek_line(line)?;
    Some((seq.checked_add(1)?, hash))
}

fn damaged(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} ends with a record that cannot be read; run `tresor audit verify`, then move the file aside to start a new chain",
            path.display()
        ),
    )
}

/// Finds where the log continues. Cuts off a partial last line of the
/// current file (a record whose write a crash interrupted was never
/// acknowledged).
pub fn resume(current: &Path) -> io::Result<Tail> {
    let files = log_files(current)?;
    if current.exists() {
        let (lines, covered) = complete_lines(current)?;
        let file = OpenOptions::new().write(true).open(current)?;
        if file.metadata()?.len() > covered {
            tracing::warn!(file = %current.display(), "cutting off a partial audit record left by a crash");
            file.set_len(covered)?;
            file.sync_all()?;
        }
        if let (Some(first), Some(last)) = (lines.first(), lines.last()) {
            let (first_seq, _) = peek_line(first).ok_or_else(|| damaged(current))?;
            let (next_seq, hash) = position_after(last).ok_or_else(|| damaged(current))?;
            return Ok(Tail {
                next_seq,
                prev: hash,
                current_first_seq: Some(first_seq),
            });
        }
    }
    let newest_rotated = files.iter().rev().find(|path| path.as_path() != current);
    if let Some(path) = newest_rotated
        && let Some(line) = last_line_of(path)?
    {
        let (next_seq, hash) = position_after(&line).ok_or_else(|| damaged(path))?;
        return Ok(Tail {
            next_seq,
            prev: hash,
            current_first_seq: None,
        });
    }
    Ok(Tail {
        next_seq: 1,
        prev: GENESIS,
        current_first_seq: None,
    })
}

/// Makes a rename or a new file in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_sort_by_first_sequence_number() {
        let dir = tempfile::tempdir().expect("dir");
        let current = dir.path().join("audit.jsonl");
        for seq in [52417u64, 1, 900] {
            std::fs::write(rotated_name(&current, seq), b"").expect("write");
        }
        std::fs::write(dir.path().join("audit.jsonl.bak"), b"").expect("write");
        std::fs::write(&current, b"").expect("write");
        let names: Vec<String> = log_files(&current)
            .expect("list")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "audit.jsonl.00000000000000000001",
                "audit.jsonl.00000000000000000900",
                "audit.jsonl.00000000000000052417",
                "audit.jsonl"
            ]
        );
    }

    #[test]
    fn a_partial_last_line_is_cut_off_on_resume() {
        let dir = tempfile::tempdir().expect("dir");
        let current = dir.path().join("audit.jsonl");
        std::fs::write(&current, b"{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ti").expect("write");
        let tail = resume(&current).expect("resume");
        assert_eq!(tail.next_seq, 3);
        assert_eq!(tail.current_first_seq, Some(1));
        assert_eq!(
            std::fs::read(&current).expect("read"),
            b"{\"seq\":1}\n{\"seq\":2}\n"
        );
    }
}
