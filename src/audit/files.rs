//! Audit files on disk: the current file, rotated files named after the
//! sequence number of their first record, and where a log resumes.
//!
//! With `--audit-file /var/lib/tresor/audit.jsonl`, the current file is
//! `audit.jsonl` and rotated ones are `audit.jsonl.00000000000000000001`,
//! `audit.jsonl.00000000000000052417`... in the same directory; sorting
//! by that number gives the order of the chain.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::record::{LineHash, peek_line};

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
    let mut rotated = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                if let Some(seq) = rotated_first_seq(current, &path) {
                    rotated.push((seq, path));
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

/// The byte length of a file's complete lines (a last line without
/// newline, from a crash in the middle of a write, is not counted).
fn complete_length(path: &Path) -> io::Result<u64> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut covered = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            return Ok(covered);
        }
        covered += read as u64;
    }
}

/// Cuts a partial last line off `path` (a record whose write a crash
/// interrupted was never acknowledged).
pub fn cut_partial_line(path: &Path) -> io::Result<()> {
    let covered = complete_length(path)?;
    let file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.len() > covered {
        tracing::warn!(file = %path.display(), "cutting off a partial audit record left by a crash");
        file.set_len(covered)?;
        file.sync_all()?;
    }
    Ok(())
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

/// The first sequence number a rotated file of `current` is named after.
pub fn rotated_first_seq(current: &Path, rotated: &Path) -> Option<u64> {
    let base = current.file_name()?.to_str()?;
    rotated
        .file_name()?
        .to_str()?
        .strip_prefix(base)?
        .strip_prefix('.')?
        .parse()
        .ok()
}

/// Where the log continues after `line`, read without authenticating it:
/// the next sequence number and the line's chain hash. `None` if `line` is
/// not a record, or holds the last sequence number there can be
/// (`u64::MAX`), which nothing may follow.
pub fn position_after(line: &[u8]) -> Option<(u64, LineHash)> {
    let (seq, hash) = peek_line(line)?;
    Some((seq.checked_add(1)?, hash))
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
    fn a_partial_last_line_is_cut_off() {
        let dir = tempfile::tempdir().expect("dir");
        let current = dir.path().join("audit.jsonl");
        std::fs::write(&current, b"{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ti").expect("write");
        cut_partial_line(&current).expect("cut");
        assert_eq!(
            std::fs::read(&current).expect("read"),
            b"{\"seq\":1}\n{\"seq\":2}\n"
        );
        assert_eq!(first_seq(&current), Some(1));
    }
}
