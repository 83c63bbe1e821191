//! Offline verification of an audit log: every record authentic, in
//! sequence, chained to the one before, and (given the keystore's latest
//! checkpoint) not cut short.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::record::{self, GENESIS, LineHash};
use super::writer::Checkpoint;
use crate::crypto::SecretKey;

/// What to hold the files to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectations {
    /// The first file must begin the log (record 1 after the genesis
    /// hash); false when checking a selection of files.
    pub from_genesis: bool,
    /// The latest checkpoint the keystore holds.
    pub checkpoint: Option<Checkpoint>,
    /// Stop after the checkpoint record (a live log grows past it, and its
    /// last line may be half written).
    pub stop_at_checkpoint: bool,
}

/// A clean pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Files read.
    pub files: usize,
    /// Records checked.
    pub records: u64,
    /// First and last sequence number seen (0 when there were none).
    pub first_seq: u64,
    /// Last sequence number seen.
    pub last_seq: u64,
    /// The keystore's checkpoint was found in the files and matched.
    pub checkpoint_matched: bool,
}

/// The first place where the log is not what the writer wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: record {record}: {problem}", file.display())]
pub struct Tampering {
    /// The file.
    pub file: PathBuf,
    /// Line number in that file, from 1.
    pub line: u64,
    /// The sequence number of the record expected at that place.
    pub record: u64,
    /// What is wrong.
    pub problem: String,
}

/// Why verification did not pass.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The log was edited, shortened, reordered or forged.
    #[error("{0}")]
    Tampered(Tampering),
    /// Nothing to verify.
    #[error("no audit records found")]
    Empty,
}

struct Position {
    next_seq: u64,
    prev: LineHash,
}

/// Verifies `files`, in chain order, with the audit key.
pub fn verify_files(
    key: &SecretKey,
    files: &[PathBuf],
    expect: Expectations,
) -> Result<Verified, VerifyError> {
    let keys = record::AuditKeys::derive(key).map_err(|e| VerifyError::Read {
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    verify_with_keys(&keys, files, expect)
}

/// [`verify_files`] with the derived keys (the running server's).
pub fn verify_with_keys(
    keys: &record::AuditKeys,
    files: &[PathBuf],
    expect: Expectations,
) -> Result<Verified, VerifyError> {
    let mut position = expect.from_genesis.then_some(Position {
        next_seq: 1,
        prev: GENESIS,
    });
    let mut verified = Verified {
        files: files.len(),
        records: 0,
        first_seq: 0,
        last_seq: 0,
        checkpoint_matched: false,
    };
    let mut last_place = (PathBuf::new(), 0u64);
    for path in files {
        let reader = BufReader::new(File::open(path).map_err(|source| read_error(path, source))?);
        let mut line_no = 0u64;
        for line in reader.split(b'\n') {
            let line = line.map_err(|source| read_error(path, source))?;
            line_no += 1;
            let expected_seq = position
                .as_ref()
                .map_or(verified.last_seq + 1, |p| p.next_seq);
            let tampered = |problem: String| {
                VerifyError::Tampered(Tampering {
                    file: path.clone(),
                    line: line_no,
                    record: expected_seq,
                    problem,
                })
            };
            let line = record::decode_line(keys, &line).map_err(|e| tampered(e.to_string()))?;
            let seq = line.record.seq;
            if let Some(expected) = &position {
                if seq > expected.next_seq {
                    return Err(tampered(format!(
                        "missing: record {seq} stands in its place (records removed or reordered)"
                    )));
                }
                if seq < expected.next_seq {
                    return Err(tampered(format!(
                        "record {seq} appears again here (records duplicated or reordered)"
                    )));
                }
                if line.prev != expected.prev {
                    return Err(tampered(
                        "does not follow the record before it (records removed, reordered or inserted)".into(),
                    ));
                }
            }
            if let Some(checkpoint) = expect.checkpoint
                && checkpoint.seq == seq
            {
                if checkpoint.hash != line.hash {
                    return Err(tampered(
                        "differs from the checkpoint the keystore holds".into(),
                    ));
                }
                verified.checkpoint_matched = true;
            }
            let at_checkpoint = expect.checkpoint.is_some_and(|c| c.seq == seq);
            if verified.records == 0 {
                verified.first_seq = seq;
            }
            verified.records += 1;
            verified.last_seq = seq;
            position = Some(Position {
                next_seq: seq + 1,
                prev: line.hash,
            });
            if at_checkpoint && expect.stop_at_checkpoint {
                return Ok(verified);
            }
        }
        last_place = (path.clone(), line_no);
    }
    if verified.records == 0 {
        return Err(VerifyError::Empty);
    }
    if let Some(checkpoint) = expect.checkpoint
        && !verified.checkpoint_matched
        && checkpoint.seq > verified.last_seq
    {
        return Err(VerifyError::Tampered(Tampering {
            file: last_place.0,
            line: last_place.1 + 1,
            record: verified.last_seq + 1,
            problem: format!(
                "missing: the log ends at record {} but the keystore's latest checkpoint is record {} (the log was cut short)",
                verified.last_seq, checkpoint.seq
            ),
        }));
    }
    Ok(verified)
}

fn read_error(path: &Path, source: std::io::Error) -> VerifyError {
    VerifyError::Read {
        path: path.to_path_buf(),
        source,
    }
}
