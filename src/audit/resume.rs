//! Where a log continues at start, authenticated: the files must hold the
//! keystore's latest checkpoint, and every record from it to the end must
//! verify. A log cut short, or whose files were removed, is found here,
//! before the server writes anything, instead of being silently continued.

use std::path::{Path, PathBuf};

use super::files::{self, Tail};
use super::record::{AuditKeys, GENESIS};
use super::verify::{Expectations, VerifyError, verify_with_keys};
use super::writer::Checkpoint;

/// Records the keystore's checkpoint proves were written, but the files no
/// longer hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRecords {
    /// The keystore's latest checkpoint.
    pub checkpoint: Checkpoint,
    /// The last record the files still hold, if any.
    pub log_ends_at: Option<u64>,
}

impl std::fmt::Display for MissingRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.checkpoint.seq;
        match self.log_ends_at {
            None => write!(
                f,
                "the keystore's latest audit checkpoint is record {c}, but the audit log holds no records"
            ),
            Some(end) if end < c => write!(
                f,
                "the keystore's latest audit checkpoint is record {c}, but the audit log ends at record {end}"
            ),
            Some(end) => write!(
                f,
                "the keystore's latest audit checkpoint, record {c}, is not in the audit log (which ends at record {end})"
            ),
        }
    }
}

/// Where the log continues, and what it lost, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// Where the next record goes.
    pub tail: Tail,
    /// Records missing before it (only with [`ResumeError::Missing`]
    /// accepted).
    pub missing: Option<MissingRecords>,
}

/// Why a log cannot be continued.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The files could not be read or the partial last line not cut off.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Records the keystore's checkpoint proves written are gone.
    #[error("{0}")]
    Missing(MissingRecords),
    /// A record from the checkpoint on does not verify (edited, forged,
    /// reordered, or files of another log).
    #[error("{0}")]
    Damaged(VerifyError),
}

/// Finds where the log whose current file is `current` continues, checking
/// it against the keystore's `checkpoint`. Cuts off a partial last line of
/// the current file first (a record whose write a crash interrupted was
/// never acknowledged). Without a checkpoint (a log that never stored
/// one), every file is verified.
///
/// With `accept_missing`, a log that lost records continues after what is
/// left (the caller records the gap); damage is refused either way.
pub fn resume(
    current: &Path,
    keys: &AuditKeys,
    checkpoint: Option<Checkpoint>,
    accept_missing: bool,
) -> Result<Resumed, ResumeError> {
    if current.exists() {
        files::cut_partial_line(current)?;
    }
    let all = files::log_files(current)?;
    let from = from_checkpoint(&all, current, checkpoint);
    let expect = Expectations {
        from_genesis: false,
        checkpoint,
        stop_at_checkpoint: false,
    };
    let (verified, missing) = match verify_with_keys(keys, &all[from..], expect) {
        Ok(verified) => match checkpoint {
            Some(c) if !verified.checkpoint_matched => {
                let end = Some(verified.last_seq);
                (Some(verified), Some(missing_after(c, end)))
            }
            _ => (Some(verified), None),
        },
        Err(VerifyError::Empty) => (None, checkpoint.map(|c| missing_after(c, None))),
        Err(VerifyError::CutShort { verified, .. }) => {
            let missing = checkpoint.map(|c| missing_after(c, Some(verified.last_seq)));
            (Some(*verified), missing)
        }
        Err(other) => return Err(ResumeError::Damaged(other)),
    };
    if let Some(missing) = &missing
        && !accept_missing
    {
        return Err(ResumeError::Missing(missing.clone()));
    }
    let tail = match verified {
        Some(v) => Tail {
            next_seq: v.last_seq.checked_add(1).ok_or_else(|| {
                ResumeError::Damaged(VerifyError::Read {
                    path: current.to_path_buf(),
                    source: std::io::Error::other(
                        "the log holds record u64::MAX: nothing can follow it",
                    ),
                })
            })?,
            prev: v.last_hash,
            current_first_seq: current_first_seq(&all, current),
        },
        None => Tail {
            next_seq: 1,
            prev: GENESIS,
            current_first_seq: None,
        },
    };
    Ok(Resumed { tail, missing })
}

fn missing_after(checkpoint: Checkpoint, log_ends_at: Option<u64>) -> MissingRecords {
    MissingRecords {
        checkpoint,
        log_ends_at,
    }
}

/// The index of the file that holds `checkpoint`: the last one whose first
/// record is not after it (0 without a checkpoint, or when every file
/// starts after it).
fn from_checkpoint(all: &[PathBuf], current: &Path, checkpoint: Option<Checkpoint>) -> usize {
    let Some(checkpoint) = checkpoint else {
        return 0;
    };
    all.iter()
        .rposition(|path| {
            let first = if path == current {
                files::first_seq(path)
            } else {
                files::rotated_first_seq(current, path)
            };
            first.is_some_and(|first| first <= checkpoint.seq)
        })
        .unwrap_or(0)
}

/// The first record of the current file, when it holds any (verified by
/// then).
fn current_first_seq(all: &[PathBuf], current: &Path) -> Option<u64> {
    all.iter()
        .any(|path| path == current)
        .then(|| files::first_seq(current))
        .flatten()
}
