//! The audit writer: group commit without a hand-over.
//!
//! A request appends its entry to a shared queue. If no write is under way,
//! that request becomes the *leader*: it takes everything queued, chains and
//! MACs it, and writes it with one `write(2)`, then repeats while more
//! arrived meanwhile (handing the job to a fresh task after a few rounds,
//! so no request waits long on others). Requests that queued while a write
//! was under way wait for the group that holds their entry. Every request is
//! answered only after its record reached the operating system; unloaded,
//! a request writes its own record with no thread or task switch at all.
//!
//! `fdatasync` follows in batches on a syncer thread, so no request waits
//! for the disk: at most [`SYNC_INTERVAL`] after a write, and at once for a
//! checkpoint. While a sync fails, requests are refused. A write that fails
//! is cut off the file again and every request in its group is refused, so
//! the file never holds a record that was not acknowledged as written, and
//! never misses one that was.
//!
//! An OS writer thread fed by a channel, and a writer task, both cost more
//! throughput (thread and task switches) than this design, where waiting
//! requests yield a few scheduler turns before they park (docs/BENCHMARKS.md, "Figures behind design choices").

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use super::files::{self, Tail};
use super::record::{self, AuditKeys, Entry, LineHash, RecordKind};
use super::resume::{self, MissingRecords, ResumeError};
use super::stdout_copy::StdoutCopy;
use crate::error::AuditError;
use tresor_crypto::SecretKey;

/// Longest time a written record waits for `fdatasync`.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(20);
/// Default size after which the current file is rotated: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Appends closer together than this mean the server is under load: a new
/// group leader then yields once so that ready calls join its group.
pub const BUSY_GAP: Duration = Duration::from_micros(100);
/// Scheduler turns a waiting request yields before it parks.
const SPINS: usize = 4;
/// Groups a leader writes before handing the job to a fresh task.
const LEADER_ROUNDS: usize = 4;
/// Failed groups remembered so that their waiting requests learn it.
const REMEMBERED_FAILURES: usize = 4096;

/// Where and how the audit log is written.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The current audit file.
    pub path: PathBuf,
    /// Rotate the current file once it is this large.
    pub max_file_bytes: u64,
    /// Continue a log that lost records the keystore's checkpoint proves
    /// written (`--accept-audit-gap`), recording the gap in a `gap`
    /// record, instead of refusing to open it.
    pub accept_gap: bool,
    /// Test switch: while set, every write fails as on a full disk.
    #[doc(hidden)]
    pub fail_writes: Option<Arc<AtomicBool>>,
    /// Also copy every record to stdout (`--audit-stdout`), best effort.
    pub copy_to_stdout: bool,
}

impl AuditOptions {
    /// Options for `path` with the default rotation size.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            accept_gap: false,
            fail_writes: None,
            copy_to_stdout: false,
        }
    }
}

/// The position a checkpoint marks: what the keystore remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the checkpoint record.
    pub seq: u64,
    /// Its chain hash.
    pub hash: LineHash,
}

/// Entries waiting for a write, and who writes.
#[derive(Default)]
struct Queue {
    entries: Vec<Entry>,
    /// Number of the group now collecting entries (from 1).
    group: u64,
    /// A leader is writing.
    leading: bool,
    /// Groups whose write failed, with why (the most recent ones).
    failed: VecDeque<(u64, AuditError)>,
}

/// What every handle shares.
struct Shared {
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
    /// Whether any group ever failed: until one does, a request knows its
    /// outcome without locking the queue again.
    any_failed: AtomicBool,
    /// Records whose write failed (their calls were refused), since the
    /// log was opened.
    failed_records: AtomicU64,
    /// The last group written (or failed).
    done: AtomicU64,
    /// Wakes the requests of a group once it is written, by the group's
    /// parity: only the group being written and the one collecting can
    /// have waiters, so waking one never wakes the other.
    written: [Notify; 2],
    sync: Arc<SyncShared>,
    closed: AtomicBool,
    /// When the last append arrived, in nanoseconds since `opened`. A new
    /// leader yields for company only when appends arrive less than
    /// [`BUSY_GAP`] apart: under load the records of the calls ready on
    /// its worker then join its group, one `write(2)` for several records.
    /// Idle, it writes at once, since a yield costs a pass through the
    /// scheduler and the I/O driver, latency a lone caller would pay. Two
    /// other signals measured worse (docs/BENCHMARKS.md): the size of the last
    /// group got stuck writing groups of one under load, and a count of calls under way
    /// misses the requests queued but not yet started.
    last_append: AtomicU64,
    /// When the log was opened: the origin of `last_append`.
    opened: Instant,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.sync.stop.store(true, Ordering::SeqCst);
    }
}

/// Locks a mutex whose guarded state a panic cannot leave half-updated
/// (queue pushes and takes, a writer whose failed writes are cut off).
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Writes queued groups until none is left (or hands the job on).
    fn lead(self: &Arc<Self>) {
        for _ in 0..LEADER_ROUNDS {
            let (entries, group) = {
                let mut queue = locked(&self.queue);
                if queue.entries.is_empty() {
                    queue.leading = false;
                    return;
                }
                let group = queue.group;
                queue.group += 1;
                (std::mem::take(&mut queue.entries), group)
            };
            let count = entries.len() as u64;
            let result = locked(&self.writer).write_entries(entries);
            if let Err(error) = result {
                self.failed_records.fetch_add(count, Ordering::Relaxed);
                self.any_failed.store(true, Ordering::SeqCst);
                let mut queue = locked(&self.queue);
                if queue.failed.len() == REMEMBERED_FAILURES {
                    queue.failed.pop_front();
                }
                queue.failed.push_back((group, error));
            }
            self.done.store(group, Ordering::SeqCst);
            self.written[(group % 2) as usize].notify_waiters();
        }
        // Still busy: a fresh task carries on, so this request can answer.
        let next = Arc::clone(self);
        tokio::spawn(async move { next.lead() });
    }

    fn outcome(&self, group: u64) -> Result<(), AuditError> {
        // Set before the failed group is marked done, so a request that saw
        // its group done also sees the flag.
        if !self.any_failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        match locked(&self.queue).failed.iter().find(|(g, _)| *g == group) {
            Some((_, error)) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

/// A running audit log. Cloning the handle is cheap.
#[derive(Clone)]
pub struct AuditLog {
    keys: Arc<AuditKeys>,
    shared: Arc<Shared>,
    path: PathBuf,
    stdout: Option<Arc<StdoutCopy>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io_error(what: &str, path: &Path, e: &io::Error) -> AuditError {
    AuditError::Write(format!("{what} {}: {e}", path.display()))
}

impl AuditLog {
    /// Opens (or creates) the log at `options.path`, continuing its chain,
    /// and starts the syncer thread. `checkpoint` is the latest one the
    /// keystore holds for this log: the files must hold it and verify from
    /// it to their end (see [`resume::resume`]), else the log is refused,
    /// unless [`AuditOptions::accept_gap`] is set and records are merely
    /// missing: then a `gap` record is written and synced before this
    /// returns.
    pub fn open(
        key: Arc<SecretKey>,
        options: AuditOptions,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Self, AuditError> {
        let path = options.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, &e))?;
        }
        let keys =
            Arc::new(AuditKeys::derive(&key).map_err(|e| {
                AuditError::Write(format!("cannot derive the audit MAC keys: {e}"))
            })?);
        drop(key);
        let resumed = resume::resume(&path, &keys, checkpoint, options.accept_gap)
            .map_err(|e| resume_error(&path, e))?;
        let tail = resumed.tail;
        let file = open_append(&path)?;
        let len = file
            .metadata()
            .map_err(|e| io_error("cannot read", &path, &e))?
            .len();
        let sync = Arc::new(SyncShared {
            file: Mutex::new(
                file.try_clone()
                    .map_err(|e| io_error("cannot open", &path, &e))?,
            ),
            dirty: AtomicBool::new(false),
            failure: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let syncer = sync.clone();
        std::thread::Builder::new()
            .name("tresor-audit-sync".into())
            .spawn(move || syncer.run())
            .map_err(|e| AuditError::Write(format!("cannot start the audit syncer: {e}")))?;
        let stdout = if options.copy_to_stdout {
            let copy = StdoutCopy::start()
                .map_err(|e| AuditError::Write(format!("cannot start the stdout copy: {e}")))?;
            Some(Arc::new(copy))
        } else {
            None
        };
        let mut writer = Writer {
            stdout: stdout.clone(),
            keys: keys.clone(),
            options,
            file,
            len,
            tail,
            sync: sync.clone(),
            written: 0,
            buffer: Vec::with_capacity(64 * 1024),
        };
        if let Some(missing) = &resumed.missing {
            writer.record_gap(missing)?;
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                group: 1,
                ..Queue::default()
            }),
            writer: Mutex::new(writer),
            any_failed: AtomicBool::new(false),
            failed_records: AtomicU64::new(0),
            done: AtomicU64::new(0),
            written: [Notify::new(), Notify::new()],
            sync,
            closed: AtomicBool::new(false),
            last_append: AtomicU64::new(0),
            opened: Instant::now(),
        });
        Ok(Self {
            keys,
            shared,
            path,
            stdout,
        })
    }

    /// The MAC keys (for the server's own verification).
    pub fn keys(&self) -> Arc<AuditKeys> {
        self.keys.clone()
    }

    /// The current audit file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records queued but not yet written.
    pub fn queue_depth(&self) -> usize {
        locked(&self.shared.queue).entries.len()
    }

    /// Groups written (or failed) since the log was opened.
    #[cfg(test)]
    pub(super) fn groups_written(&self) -> u64 {
        self.shared.done.load(Ordering::SeqCst)
    }

    /// Records left out of the `--audit-stdout` copy (0 without it).
    pub fn stdout_dropped(&self) -> u64 {
        self.stdout.as_ref().map_or(0, |copy| copy.dropped())
    }

    /// Records whose write failed since the log was opened: each was a
    /// call refused with AUDIT_UNAVAILABLE (or an event not recorded).
    pub fn records_failed(&self) -> u64 {
        self.shared.failed_records.load(Ordering::Relaxed)
    }

    /// Records written since the log was opened.
    pub fn records_written(&self) -> u64 {
        locked(&self.shared.writer).written
    }

    /// Appends `entry`; returns once its record reached the operating
    /// system (and fails if it could not be written).
    pub async fn append(&self, entry: Entry) -> Result<(), AuditError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(AuditError::Closed);
        }
        let now = u64::try_from(self.shared.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let previous = self.shared.last_append.swap(now, Ordering::Relaxed);
        let busy = now.saturating_sub(previous) < BUSY_GAP.as_nanos() as u64;
        let (group, lead) = {
            let mut queue = locked(&self.shared.queue);
            queue.entries.push(entry);
            let lead = !std::mem::replace(&mut queue.leading, true);
            (queue.group, lead)
        };
        if lead {
            if busy {
                // Let the other tasks that are ready on this worker reach
                // their own append first: they join this group, and one
                // write serves them all.
                tokio::task::yield_now().await;
            }
            self.shared.lead();
        }
        // Under load the group is usually written within a few scheduler
        // turns: re-queue behind the other ready tasks instead of parking
        // (a park and a wake-up cost a futex call each on a busy machine).
        for _ in 0..SPINS {
            if self.shared.done.load(Ordering::SeqCst) >= group {
                return self.shared.outcome(group);
            }
            tokio::task::yield_now().await;
        }
        let written = &self.shared.written[(group % 2) as usize];
        loop {
            let notified = written.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.done.load(Ordering::SeqCst) >= group {
                break;
            }
            notified.await;
        }
        self.shared.outcome(group)
    }

    /// Writes a checkpoint record and syncs the file; returns its position.
    pub async fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        let checkpoint = locked(&self.shared.writer).checkpoint()?;
        let sync = self.shared.sync.clone();
        tokio::task::spawn_blocking(move || sync.sync_now())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
            .map_err(|e| io_error("cannot sync", &self.path, &e))?;
        Ok(checkpoint)
    }

    /// Writes a final checkpoint and syncs. Later appends fail with
    /// [`AuditError::Closed`].
    pub async fn close(&self) -> Result<Checkpoint, AuditError> {
        self.shared.closed.store(true, Ordering::SeqCst);
        let checkpoint = self.checkpoint().await;
        self.shared.sync.stop.store(true, Ordering::SeqCst);
        if let Some(copy) = self.stdout.clone() {
            let _ = tokio::task::spawn_blocking(move || copy.flush()).await;
        }
        checkpoint
    }

    /// The digest of one encryption-context value (see
    /// [`record::context_value_digest`]).
    pub fn context_digest(&self, value: &str) -> String {
        record::context_value_digest(&self.keys, value)
    }

    /// The record of a context over the limits (see
    /// [`record::oversized_context`]).
    pub fn oversized_context<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> record::OversizedContext {
        record::oversized_context(&self.keys, pairs)
    }
}

/// Why a log cannot be opened, and what the operator can do.
fn resume_error(path: &Path, error: ResumeError) -> AuditError {
    match error {
        ResumeError::Io(e) => io_error("cannot resume", path, &e),
        ResumeError::Missing(missing) => AuditError::Resume(format!(
            "{missing}: records were cut off the audit log at {} or its files removed. \
             Restore them from your copies; or, if you know why they are gone, start once with \
             --accept-audit-gap, which records the gap in the log",
            path.display()
        )),
        ResumeError::Damaged(problem) => AuditError::Resume(format!(
            "{problem}. Run `tresor audit verify`; to start a new chain, move the damaged files aside \
             and start once with --accept-audit-gap"
        )),
    }
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error("cannot open", path, &e))
}

/// What the writer and the syncer thread share.
struct SyncShared {
    /// A handle on the current file, for `fdatasync`.
    file: Mutex<File>,
    /// Written since the last sync.
    dirty: AtomicBool,
    /// Why the last sync failed, while none has succeeded since.
    failure: Mutex<Option<String>>,
    /// The log is closed or dropped: the syncer stops.
    stop: AtomicBool,
}

impl SyncShared {
    fn failed(&self) -> bool {
        locked(&self.failure).is_some()
    }

    fn sync_now(&self) -> io::Result<()> {
        let was_dirty = self.dirty.swap(false, Ordering::SeqCst);
        if !was_dirty && !self.failed() {
            return Ok(());
        }
        let result = locked(&self.file).sync_data();
        let mut failure = locked(&self.failure);
        match &result {
            Ok(()) => *failure = None,
            Err(e) => {
                if failure.is_none() {
                    tracing::error!(error = %e, "audit file not synced: refusing requests until it is");
                }
                *failure = Some(e.to_string());
                self.dirty.store(true, Ordering::SeqCst);
            }
        }
        result
    }

    /// The syncer thread: syncs what was written, every [`SYNC_INTERVAL`].
    fn run(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(SYNC_INTERVAL);
            let _ = self.sync_now();
        }
        let _ = self.sync_now();
    }
}

/// The file and the chain; only a leader (or a checkpoint) touches it.
struct Writer {
    /// The `--audit-stdout` copy.
    stdout: Option<Arc<StdoutCopy>>,
    keys: Arc<AuditKeys>,
    options: AuditOptions,
    file: File,
    /// Bytes of the current file that hold acknowledged records.
    len: u64,
    tail: Tail,
    sync: Arc<SyncShared>,
    written: u64,
    /// Reused for every group.
    buffer: Vec<u8>,
}

impl Writer {
    /// Writes a checkpoint record (the caller syncs).
    fn checkpoint(&mut self) -> Result<Checkpoint, AuditError> {
        let entry = Entry {
            kind: RecordKind::Checkpoint,
            ..Entry::event("checkpoint", "")
        };
        self.write_entries(vec![entry])?;
        Ok(Checkpoint {
            seq: self.tail.next_seq - 1,
            hash: self.tail.prev,
        })
    }

    /// Writes and syncs the `gap` record of records found missing at
    /// start. Its sequence number skips past the keystore's checkpoint, so
    /// no number is used twice.
    fn record_gap(&mut self, missing: &MissingRecords) -> Result<(), AuditError> {
        tracing::warn!(%missing, "--accept-audit-gap: continuing the audit log after missing records; a gap record notes it");
        let entry = Entry {
            kind: RecordKind::Gap,
            ..Entry::event(
                "audit_gap",
                format!("{missing}; accepted with --accept-audit-gap"),
            )
        };
        self.write_group(vec![entry], missing.checkpoint.seq.saturating_add(1))?;
        self.sync()
    }

    fn write_entries(&mut self, entries: Vec<Entry>) -> Result<(), AuditError> {
        self.write_group(entries, 0)
    }

    /// Writes `entries` as one group; a `gap` entry among them takes at
    /// least the sequence number `gap_floor`.
    fn write_group(&mut self, entries: Vec<Entry>, gap_floor: u64) -> Result<(), AuditError> {
        if self.sync.failed() {
            self.sync()?;
        }
        if self.len >= self.options.max_file_bytes && self.tail.current_first_seq.is_some() {
            self.rotate()?;
        }
        let mut entries = entries;
        if self.tail.current_first_seq.is_none() {
            let detail = if self.tail.next_seq == 1 {
                "a new audit log begins".to_owned()
            } else {
                format!("continues after record {}", self.tail.next_seq - 1)
            };
            let start = Entry {
                kind: RecordKind::FileStart,
                ..Entry::event("file_start", detail)
            };
            entries.insert(0, start);
        }
        let count = entries.len();
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        self.buffer.clear();
        let mut seq = self.tail.next_seq;
        let mut prev = self.tail.prev;
        for entry in &entries {
            if entry.kind == RecordKind::Gap {
                seq = seq.max(gap_floor);
            }
            let start = self.buffer.len();
            record::append_capped_line(&self.keys, &mut self.buffer, seq, &time, &prev, entry)
                .map_err(|e| AuditError::Write(format!("cannot encode a record: {e}")))?;
            prev = record::line_hash(&self.buffer[start..]);
            self.buffer.push(b'\n');
            seq = seq.checked_add(1).ok_or_else(|| {
                AuditError::Write("the audit log has used every sequence number".into())
            })?;
        }
        let buffer = std::mem::take(&mut self.buffer);
        let written = self.write(&buffer);
        self.buffer = buffer;
        written?;
        if let Some(copy) = &self.stdout {
            copy.send(&self.buffer);
        }
        if self.tail.current_first_seq.is_none() {
            self.tail.current_first_seq = Some(self.tail.next_seq);
        }
        self.tail.next_seq = seq;
        self.tail.prev = prev;
        self.written += count as u64;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let injected = self
            .options
            .fail_writes
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst));
        let result = if injected {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected by a test)",
            ))
        } else {
            self.file.write_all(bytes)
        };
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.sync.dirty.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part of the group reached the file: none of
                // it is acknowledged.
                if let Err(cut) = self.file.set_len(self.len) {
                    tracing::error!(file = %self.options.path.display(), error = %cut, "cannot cut a failed audit write off the file");
                }
                let error = io_error("cannot write", &self.options.path, &e);
                tracing::error!(error = %error, "audit record not written: refusing the requests it was for");
                Err(error)
            }
        }
    }

    /// Syncs now, in place (rotation, or retrying a failed sync).
    fn sync(&mut self) -> Result<(), AuditError> {
        self.sync
            .sync_now()
            .map_err(|e| io_error("cannot sync", &self.options.path, &e))
    }

    /// Renames the full current file after its first record and starts a
    /// new one.
    fn rotate(&mut self) -> Result<(), AuditError> {
        let Some(first) = self.tail.current_first_seq else {
            return Ok(());
        };
        self.sync()?;
        let path = self.options.path.clone();
        let rotated = files::rotated_name(&path, first);
        std::fs::rename(&path, &rotated).map_err(|e| io_error("cannot rotate", &path, &e))?;
        self.file = open_append(&path)?;
        *locked(&self.sync.file) = self
            .file
            .try_clone()
            .map_err(|e| io_error("cannot open", &path, &e))?;
        files::sync_parent(&path)
            .map_err(|e| io_error("cannot sync the directory of", &path, &e))?;
        self.len = 0;
        self.tail.current_first_seq = None;
        tracing::info!(rotated = %rotated.display(), "audit file rotated");
        Ok(())
    }
}
