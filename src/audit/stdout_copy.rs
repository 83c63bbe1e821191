//! `--audit-stdout`: a copy of every audit record, as written to the file
//! (one JSON object per line), on stdout for a cluster's log collector.
//!
//! The copy is best effort and never slows the log: records go through a
//! bounded queue to a thread of their own, and when stdout does not keep
//! up (a stalled collector, a full pipe) the records that do not fit are
//! dropped from the copy and counted, never from the file. The copy has no
//! tamper evidence of its own beyond the MAC each line carries; the
//! hash-chained file stays the record (`tresor audit verify`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, TrySendError, channel, sync_channel};
use std::time::Duration;

/// Groups of lines the queue holds before dropping.
const QUEUE_GROUPS: usize = 4096;
/// How long closing the log waits for the copy to reach stdout.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// What the copy thread is sent.
enum Message {
    /// Whole lines to write.
    Lines(Vec<u8>),
    /// Answer once everything before has been written.
    Flush(Sender<()>),
}

/// The writing end of the copy.
#[derive(Debug)]
pub struct StdoutCopy {
    sender: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl StdoutCopy {
    /// Starts the thread that writes to stdout.
    pub fn start() -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel::<Message>(QUEUE_GROUPS);
        std::thread::Builder::new()
            .name("tresor-audit-stdout".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                for message in receiver {
                    match message {
                        Message::Lines(lines) => {
                            let mut out = stdout.lock();
                            if out.write_all(&lines).and_then(|()| out.flush()).is_err() {
                                // stdout is gone (closed pipe): the copy
                                // ends, the file goes on.
                                return;
                            }
                        }
                        Message::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(Self {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues `lines` (whole records, each ending in a newline) for stdout,
    /// or counts them as dropped when the queue is full or the copy ended.
    pub fn send(&self, lines: &[u8]) {
        match self.sender.try_send(Message::Lines(lines.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let records = lines.iter().filter(|b| **b == b'\n').count() as u64;
                self.dropped.fetch_add(records, Ordering::Relaxed);
            }
        }
    }

    /// Waits (up to two seconds, so a stalled stdout cannot hold up a
    /// shutdown) until everything queued so far reached stdout.
    pub fn flush(&self) {
        let (done, answered) = channel();
        if self.sender.try_send(Message::Flush(done)).is_ok() {
            let _ = answered.recv_timeout(FLUSH_WAIT);
        }
    }

    /// Records left out of the copy since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
