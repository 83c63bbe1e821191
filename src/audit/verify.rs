//! Offline verification of an audit log: every record authentic, in
//! sequence, chained to the one before, and (given the keystore's latest
//! checkpoint) not cut short.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::files;
use super::record::{self, GENESIS, LineHash, RecordKind};
use super::writer::Checkpoint;
use tresor_crypto::SecretKey;

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
    /// The chain hash of the last record seen (where the log continues).
    pub last_hash: LineHash,
    /// Gaps an operator accepted (`--accept-audit-gap`), each recorded by
    /// an authentic `gap` record, in log order.
    pub gaps: Vec<AcceptedGap>,
}

/// A `gap` record: the server was started with `--accept-audit-gap` on a
/// log that had lost records the keystore's checkpoint proved written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedGap {
    /// The sequence number of the gap record.
    pub record: u64,
    /// The first sequence number missing before it (equal to `record`
    /// when the numbers run on, or when the gap record opens the files
    /// checked).
    pub first_missing: u64,
    /// When the gap was accepted.
    pub time: String,
    /// What the server found missing.
    pub detail: String,
}

impl std::fmt::Display for AcceptedGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first_missing < self.record {
            write!(
                f,
                "records {}–{} are missing",
                self.first_missing,
                self.record - 1
            )?;
        } else {
            write!(f, "records are missing")?;
        }
        write!(
            f,
            "; gap accepted at record {} ({}): {}",
            self.record, self.time, self.detail
        )
    }
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
    /// Every record read is intact, but the log ends before the keystore's
    /// checkpoint: records were cut off its end (or its last files
    /// removed).
    #[error("{tampering}")]
    CutShort {
        /// Where the missing records should be.
        tampering: Tampering,
        /// What the intact part holds.
        verified: Box<Verified>,
    },
    /// Nothing to verify.
    #[error("no audit records found")]
    Empty,
}

struct Position {
    /// The sequence number the next record must have; `None` after record
    /// `u64::MAX`, which nothing can follow.
    next_seq: Option<u64>,
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
    let mut verifier = Verifier::new(keys, expect, files.len());
    let mut last_place = (PathBuf::new(), 0u64);
    for path in files {
        let reader = BufReader::new(File::open(path).map_err(|source| read_error(path, source))?);
        match verifier.read(path, reader)? {
            Flow::Stopped => return Ok(verifier.verified),
            Flow::Read(lines) => last_place = (path.clone(), lines),
        }
    }
    verifier.finish(last_place)
}

/// How reading one file ended.
enum Flow {
    /// Every line was read: this many.
    Read(u64),
    /// Stopped at the checkpoint ([`Expectations::stop_at_checkpoint`]).
    Stopped,
}

/// The state of one verification, line after line.
struct Verifier<'a> {
    keys: &'a record::AuditKeys,
    expect: Expectations,
    position: Option<Position>,
    verified: Verified,
}

impl<'a> Verifier<'a> {
    fn new(keys: &'a record::AuditKeys, expect: Expectations, files: usize) -> Self {
        Self {
            keys,
            expect,
            position: expect.from_genesis.then_some(Position {
                next_seq: Some(1),
                prev: GENESIS,
            }),
            verified: Verified {
                files,
                records: 0,
                first_seq: 0,
                last_seq: 0,
                checkpoint_matched: false,
                last_hash: GENESIS,
                gaps: Vec::new(),
            },
        }
    }

    /// Checks every line of one file (`path` names it in errors).
    fn read(&mut self, path: &Path, reader: impl BufRead) -> Result<Flow, VerifyError> {
        let mut line_no = 0u64;
        for line in reader.split(b'\n') {
            let line = line.map_err(|source| read_error(path, source))?;
            line_no += 1;
            if self.line(&line).map_err(|(record, problem)| {
                VerifyError::Tampered(Tampering {
                    file: path.to_path_buf(),
                    line: line_no,
                    record,
                    problem,
                })
            })? {
                return Ok(Flow::Stopped);
            }
        }
        Ok(Flow::Read(line_no))
    }

    /// Checks one line: `Ok(true)` when verification stops after it, or
    /// the sequence number expected at that place and what is wrong.
    fn line(&mut self, line: &[u8]) -> Result<bool, (u64, String)> {
        let expected_seq = match &self.position {
            Some(p) => p.next_seq.unwrap_or(u64::MAX),
            None => self.verified.last_seq.saturating_add(1),
        };
        let tampered = |problem: String| (expected_seq, problem);
        let line = record::decode_line(self.keys, line).map_err(|e| tampered(e.to_string()))?;
        let seq = line.record.seq;
        let is_gap = line.record.entry.kind == RecordKind::Gap;
        let mut first_missing = seq;
        if let Some(expected) = &self.position {
            let Some(next_seq) = expected.next_seq else {
                return Err(tampered(format!(
                    "record {seq} follows record {}, the last sequence number there can be",
                    u64::MAX
                )));
            };
            first_missing = next_seq;
            // A gap record may skip sequence numbers (the ones lost), but
            // it still chains to the record before it.
            if seq > next_seq && !is_gap {
                return Err(tampered(format!(
                    "missing: record {seq} stands in its place (records removed or reordered)"
                )));
            }
            if seq < next_seq {
                return Err(tampered(format!(
                    "record {seq} appears again here (records duplicated or reordered)"
                )));
            }
            if line.prev != expected.prev {
                return Err(tampered(
                    "does not follow the record before it (records removed, reordered or inserted)"
                        .into(),
                ));
            }
        }
        let at_checkpoint = self.expect.checkpoint.filter(|c| c.seq == seq);
        if let Some(checkpoint) = at_checkpoint {
            if checkpoint.hash != line.hash {
                return Err(tampered(
                    "differs from the checkpoint the keystore holds".into(),
                ));
            }
            self.verified.checkpoint_matched = true;
        }
        if is_gap {
            self.verified.gaps.push(AcceptedGap {
                record: seq,
                first_missing: first_missing.min(seq),
                time: line.record.time.clone(),
                detail: line.record.entry.detail.clone().unwrap_or_default(),
            });
        }
        if self.verified.records == 0 {
            self.verified.first_seq = seq;
        }
        self.verified.records += 1;
        self.verified.last_seq = seq;
        self.verified.last_hash = line.hash;
        self.position = Some(Position {
            next_seq: seq.checked_add(1),
            prev: line.hash,
        });
        Ok(at_checkpoint.is_some() && self.expect.stop_at_checkpoint)
    }

    /// The result once every file was read; `last_place` is the last file
    /// and its number of lines.
    fn finish(self, last_place: (PathBuf, u64)) -> Result<Verified, VerifyError> {
        let verified = self.verified;
        if verified.records == 0 {
            return Err(VerifyError::Empty);
        }
        if let Some(checkpoint) = self.expect.checkpoint
            && !verified.checkpoint_matched
            && checkpoint.seq > verified.last_seq
        {
            return Err(VerifyError::CutShort {
                tampering: Tampering {
                    file: last_place.0,
                    line: last_place.1.saturating_add(1),
                    record: verified.last_seq.saturating_add(1),
                    problem: format!(
                        "missing: the log ends at record {} but the keystore's latest checkpoint is record {} (the log was cut short)",
                        verified.last_seq, checkpoint.seq
                    ),
                },
                verified: Box::new(verified),
            });
        }
        Ok(verified)
    }
}

/// Fuzz entry point of offline verification, for
/// `fuzz/fuzz_targets/audit_record.rs` and the proptest smoke test
/// `tests/it/fuzz_smoke.rs` (nothing else calls it).
///
/// Verifies `data` as one audit file under [`record::fuzz_keys`], from the
/// genesis record, then as a selection of files holding a checkpoint at
/// its second line. Then it signs every line that ends in `}` as a record
/// body under those keys and verifies the result again, so that the
/// sequence and chain checks see arbitrary records. Every pass that
/// succeeds must have counted a gapless run of sequence numbers, and the
/// resume position after each line ([`files::position_after`]) must follow
/// its sequence number.
///
/// # Panics
///
/// Only when the library breaks one of these properties: a bug the fuzzer
/// reports. No input is expected to panic.
pub fn fuzz_log(data: &[u8]) {
    let keys = record::fuzz_keys();
    let signed: Vec<u8> = data
        .split(|b| *b == b'\n')
        .map(|line| record::sign_body(&keys, line).unwrap_or_else(|| line.to_vec()))
        .collect::<Vec<_>>()
        .join(&b'\n');
    for log in [data, &signed] {
        for line in log.split(|b| *b == b'\n') {
            let after = files::position_after(line);
            let peeked = record::peek_line(line);
            assert_eq!(
                after,
                peeked.and_then(|(seq, hash)| Some((seq.checked_add(1)?, hash))),
                "the resume position does not follow the record"
            );
        }
        let checkpoint = log
            .split(|b| *b == b'\n')
            .nth(1)
            .and_then(record::peek_line)
            .map(|(seq, hash)| Checkpoint { seq, hash });
        for expect in [
            Expectations {
                from_genesis: true,
                ..Expectations::default()
            },
            Expectations {
                from_genesis: false,
                checkpoint,
                stop_at_checkpoint: true,
            },
        ] {
            let mut verifier = Verifier::new(&keys, expect, 1);
            let path = Path::new("fuzz.jsonl");
            let result = match verifier.read(path, std::io::Cursor::new(log)) {
                Ok(Flow::Stopped) => Ok(verifier.verified),
                Ok(Flow::Read(lines)) => verifier.finish((path.to_path_buf(), lines)),
                Err(e) => Err(e),
            };
            if let Ok(v) = result {
                assert!(v.records >= 1 && v.first_seq <= v.last_seq);
                let skipped: u64 = v.gaps.iter().map(|g| g.record - g.first_missing).sum();
                assert_eq!(
                    v.last_seq - v.first_seq,
                    v.records - 1 + skipped,
                    "a gap was let through without a gap record"
                );
                assert!(!expect.from_genesis || v.first_seq == 1);
                assert!(
                    !expect.stop_at_checkpoint
                        || expect.checkpoint.is_none()
                        || v.checkpoint_matched
                );
            }
        }
    }
}

fn read_error(path: &Path, source: std::io::Error) -> VerifyError {
    VerifyError::Read {
        path: path.to_path_buf(),
        source,
    }
}
