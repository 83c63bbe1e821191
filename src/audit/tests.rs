//! The writer and the verifier together: a log written by the writer
//! verifies, and every kind of tampering is found at the right record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::error::AuditError;
use tresor_crypto::SecretKey;

fn entry(n: u64) -> Entry {
    Entry {
        kind: RecordKind::Request,
        key_id: Some(format!("key-{n}")),
        status: Some("OK".into()),
        ..Entry::event("Encrypt", "")
    }
}

/// Writes `count` request records plus the final checkpoint; returns the
/// log's files and the checkpoint.
async fn write_log(
    key: &Arc<SecretKey>,
    options: AuditOptions,
    count: u64,
) -> (Vec<PathBuf>, Checkpoint) {
    write_log_after(key, options, count, None).await
}

/// [`write_log`] on a log whose keystore checkpoint is `stored`.
async fn write_log_after(
    key: &Arc<SecretKey>,
    options: AuditOptions,
    count: u64,
    stored: Option<Checkpoint>,
) -> (Vec<PathBuf>, Checkpoint) {
    let log = AuditLog::open(key.clone(), options.clone(), stored).expect("open");
    for n in 0..count {
        log.append(entry(n)).await.expect("append");
    }
    let checkpoint = log.close().await.expect("close");
    (files::log_files(&options.path).expect("list"), checkpoint)
}

/// Appends `entry(n)` for every `n` of `range`, each from its own task,
/// all spawned before any runs; returns once every one is written.
async fn append_concurrently(log: &AuditLog, range: std::ops::Range<u64>) {
    let tasks: Vec<_> = range
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.append(entry(n)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("append");
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write");
}

fn expect_all(checkpoint: Checkpoint) -> Expectations {
    Expectations {
        from_genesis: true,
        checkpoint: Some(checkpoint),
        stop_at_checkpoint: false,
    }
}

fn tampered_record(result: Result<Verified, VerifyError>) -> u64 {
    match result {
        Err(VerifyError::Tampered(t) | VerifyError::CutShort { tampering: t, .. }) => t.record,
        other => panic!("expected tampering to be found, got {other:?}"),
    }
}

#[tokio::test]
async fn a_written_log_verifies_and_resumes_its_chain_after_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    let (_, first) = write_log(&key, options.clone(), 5).await;
    let (files, checkpoint) = write_log_after(&key, options, 3, Some(first)).await;
    let verified = verify_files(&key, &files, expect_all(checkpoint)).expect("verify");
    // file start + 5 + checkpoint + 3 + checkpoint
    assert_eq!(verified.records, 11);
    assert_eq!(checkpoint.seq, 11);
    assert!(verified.checkpoint_matched);
}

#[tokio::test]
async fn rotation_keeps_one_chain_across_files() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions {
        max_file_bytes: 2_000,
        ..AuditOptions::at(dir.path().join("audit.jsonl"))
    };
    let (files, checkpoint) = write_log(&key, options, 60).await;
    assert!(files.len() > 3, "expected rotation, got {files:?}");
    for file in &files {
        let first = lines(file).remove(0);
        assert!(first.contains("\"kind\":\"file_start\""), "{first}");
    }
    let verified = verify_files(&key, &files, expect_all(checkpoint)).expect("verify");
    assert_eq!(verified.last_seq, checkpoint.seq);
    // Removing a whole rotated file breaks the chain at the next one.
    let mut without_second = files.clone();
    let removed = without_second.remove(1);
    let first_of_removed = lines(&removed).len() as u64;
    let record = tampered_record(verify_files(&key, &without_second, expect_all(checkpoint)));
    assert!(record > 1 && record <= lines(&files[0]).len() as u64 + first_of_removed);
}

#[tokio::test]
async fn every_kind_of_tampering_is_found_at_the_right_record() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let path = dir.path().join("audit.jsonl");
    let (files, checkpoint) = write_log(&key, AuditOptions::at(&path), 10).await;
    assert_eq!(files, std::slice::from_ref(&path));
    let original = lines(&path);
    let check = |edited: Vec<String>| {
        write_lines(&path, &edited);
        tampered_record(verify_files(
            &key,
            std::slice::from_ref(&path),
            expect_all(checkpoint),
        ))
    };
    // Line i holds record i + 1.
    let mut edited = original.clone();
    edited[4] = edited[4].replace("key-3", "key-9");
    assert_eq!(check(edited), 5, "edited byte");

    let mut removed = original.clone();
    removed.remove(6);
    assert_eq!(check(removed), 7, "removed line");

    let mut swapped = original.clone();
    swapped.swap(3, 4);
    assert_eq!(check(swapped), 4, "swapped lines");

    let mut inserted = original.clone();
    let mut forged = original[2].clone();
    forged = forged.replace("key-1", "key-7");
    inserted.insert(3, forged);
    assert_eq!(check(inserted), 4, "inserted forged line");

    let mut replayed = original.clone();
    replayed.insert(5, original[2].clone());
    assert_eq!(check(replayed), 6, "replayed line");

    let truncated = original[..8].to_vec();
    assert_eq!(check(truncated), 9, "truncated tail");

    write_lines(&path, &original);
    assert!(verify_files(&key, std::slice::from_ref(&path), expect_all(checkpoint)).is_ok());
    let other = SecretKey::generate().expect("key");
    assert_eq!(
        tampered_record(verify_files(&other, &[path], expect_all(checkpoint))),
        1,
        "another key"
    );
}

#[tokio::test]
async fn a_failed_write_is_refused_and_leaves_no_trace() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let fail = Arc::new(AtomicBool::new(false));
    let options = AuditOptions {
        fail_writes: Some(fail.clone()),
        ..AuditOptions::at(dir.path().join("audit.jsonl"))
    };
    let log = AuditLog::open(key.clone(), options.clone(), None).expect("open");
    log.append(entry(1)).await.expect("append");
    fail.store(true, Ordering::SeqCst);
    let refused = log.append(entry(2)).await.expect_err("disk full");
    assert!(refused.to_string().contains("no space left"), "{refused}");
    assert_eq!(log.records_failed(), 1);
    fail.store(false, Ordering::SeqCst);
    log.append(entry(3)).await.expect("append after recovery");
    let checkpoint = log.close().await.expect("close");
    let files = files::log_files(&options.path).expect("list");
    verify_files(&key, &files, expect_all(checkpoint)).expect("verify");
    let text = std::fs::read_to_string(&options.path).expect("read");
    assert!(text.contains("key-1") && text.contains("key-3") && !text.contains("key-2"));
}

#[tokio::test]
async fn concurrent_appends_are_grouped_and_all_chained() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    let log = AuditLog::open(key.clone(), options.clone(), None).expect("open");
    append_concurrently(&log, 0..400).await;
    let checkpoint = log.close().await.expect("close");
    let files = files::log_files(&options.path).expect("list");
    let verified = verify_files(&key, &files, expect_all(checkpoint)).expect("verify");
    assert_eq!(verified.records, 402);
    assert!(log.append(entry(0)).await.is_err(), "closed log refuses");
}

/// Polls `future` once, without a runtime's waker.
fn poll_once<F: std::future::Future>(future: F) -> std::task::Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    future.as_mut().poll(&mut cx)
}

#[tokio::test]
async fn an_idle_append_is_written_at_once_and_appends_under_load_are_grouped() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    let log = AuditLog::open(key.clone(), options.clone(), None).expect("open");

    // Idle (no append for longer than BUSY_GAP): the record is written in
    // the first poll, with no yield for company that is not coming.
    for n in 0..3 {
        std::thread::sleep(writer::BUSY_GAP * 2);
        assert!(
            matches!(
                poll_once(log.append(entry(n))),
                std::task::Poll::Ready(Ok(()))
            ),
            "idle append {n} waited"
        );
    }
    let groups_before = log.groups_written();

    // Under load (appends back to back): the first leader yields, the
    // others queue behind it, and far fewer writes carry the records.
    append_concurrently(&log, 3..203).await;
    let groups = log.groups_written() - groups_before;
    assert!(groups <= 10, "200 records took {groups} writes");

    let checkpoint = log.close().await.expect("close");
    let files = files::log_files(&options.path).expect("list");
    let verified = verify_files(&key, &files, expect_all(checkpoint)).expect("verify");
    assert_eq!(verified.records, 205, "file start, 203 records, checkpoint");
}

/// Writes authentic records with these sequence numbers, chained, as one
/// file at `path`.
fn write_records(key: &SecretKey, path: &Path, seqs: &[u64]) {
    let keys = record::AuditKeys::derive(key).expect("keys");
    let mut log = Vec::new();
    let mut prev = record::GENESIS;
    for &seq in seqs {
        let start = log.len();
        record::append_line(&keys, &mut log, seq, "t", &prev, &entry(seq)).expect("encode");
        prev = record::line_hash(&log[start..]);
        log.push(b'\n');
    }
    std::fs::write(path, log).expect("write");
}

/// Found while writing the fuzz helpers: resuming after a last line with
/// `"seq":18446744073709551615` overflowed `seq + 1` (a panic in debug
/// builds, record 0 in release), and the writer's own `seq += 1` could
/// overflow the same way. A damaged file must fail cleanly.
#[tokio::test]
async fn a_log_at_the_last_sequence_numbers_fails_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    write_records(&key, &options.path, &[u64::MAX]);
    assert!(
        AuditLog::open(key.clone(), options.clone(), None).is_err(),
        "nothing can follow record u64::MAX"
    );
    assert_eq!(
        files::position_after(format!("{{\"seq\":{}}}", u64::MAX - 1).as_bytes()).map(|p| p.0),
        Some(u64::MAX)
    );

    write_records(&key, &options.path, &[u64::MAX - 1]);
    let log = AuditLog::open(key, options, None).expect("record u64::MAX is still free");
    let refused = log.append(entry(1)).await;
    assert!(
        matches!(refused, Err(AuditError::Write(_))),
        "the file start takes u64::MAX; the entry has no number left: {refused:?}"
    );
}

/// Issue 18: the log resumed from its last line without checking its MAC,
/// so a forged or edited last record was chained onto at start.
#[tokio::test]
async fn a_last_record_that_does_not_authenticate_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    let (_, checkpoint) = write_log(&key, options.clone(), 4).await;
    let mut edited = lines(&options.path);
    let last = edited.len() - 1;
    edited[last] = edited[last].replacen("\"checkpoint\"", "\"checkpoinT\"", 1);
    write_lines(&options.path, &edited);
    for accept_gap in [false, true] {
        let options = AuditOptions {
            accept_gap,
            ..options.clone()
        };
        let refused = AuditLog::open(key.clone(), options, Some(checkpoint));
        assert!(
            matches!(&refused, Err(AuditError::Resume(why)) if why.contains("MAC")),
            "accept_gap {accept_gap}: {refused:?}"
        );
    }
    let foreign = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("other.jsonl"));
    write_log(&foreign, options.clone(), 2).await;
    assert!(
        AuditLog::open(key, options, None).is_err(),
        "another key's log"
    );
}

/// Issue 18: a log cut short (or removed) while the server was stopped was
/// continued at start as if nothing happened. Now it is refused against
/// the keystore's checkpoint, unless the operator accepts the gap, which a
/// `gap` record notes and verification reports.
#[tokio::test]
async fn a_log_missing_records_before_the_checkpoint_is_refused_unless_the_gap_is_accepted() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    let (_, checkpoint) = write_log(&key, options.clone(), 6).await;
    let original = lines(&options.path);
    assert_eq!(checkpoint.seq, original.len() as u64);

    let cut = original[..original.len() - 3].to_vec();
    write_lines(&options.path, &cut);
    let refused = AuditLog::open(key.clone(), options.clone(), Some(checkpoint));
    assert!(
        matches!(&refused, Err(AuditError::Resume(why))
            if why.contains(&format!("checkpoint is record {}", checkpoint.seq))
                && why.contains(&format!("ends at record {}", cut.len()))
                && why.contains("--accept-audit-gap")),
        "{refused:?}"
    );
    assert_eq!(lines(&options.path), cut, "a refused open writes nothing");

    let accepting = AuditOptions {
        accept_gap: true,
        ..options.clone()
    };
    let (files, after) = write_log_after(&key, accepting, 2, Some(checkpoint)).await;
    let verified = verify_files(&key, &files, expect_all(after)).expect("verify");
    assert_eq!(verified.gaps.len(), 1, "{verified:?}");
    let gap = &verified.gaps[0];
    assert_eq!(gap.first_missing, cut.len() as u64 + 1);
    assert_eq!(
        gap.record,
        checkpoint.seq + 1,
        "numbers skip past the checkpoint"
    );
    assert!(gap.detail.contains("--accept-audit-gap"), "{gap:?}");
    assert!(after.seq > checkpoint.seq);

    // Every file removed: refused too; accepted, a new chain notes the gap.
    std::fs::remove_file(&options.path).expect("remove");
    assert!(matches!(
        AuditLog::open(key.clone(), options.clone(), Some(after)),
        Err(AuditError::Resume(why)) if why.contains("holds no records")
    ));
    let accepting = AuditOptions {
        accept_gap: true,
        ..options
    };
    let (files, last) = write_log_after(&key, accepting, 1, Some(after)).await;
    let verified = verify_files(&key, &files, expect_all(last)).expect("verify");
    assert_eq!(verified.gaps.len(), 1);
    assert_eq!(
        (verified.gaps[0].first_missing, verified.gaps[0].record),
        (2, after.seq + 1)
    );
}

/// A checkpoint in a rotated file: the log resumes after verifying from
/// that file on; a rotated file after it removed is refused.
#[tokio::test]
async fn a_checkpoint_in_a_rotated_file_is_found_and_held_against_later_files() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions {
        max_file_bytes: 2_000,
        ..AuditOptions::at(dir.path().join("audit.jsonl"))
    };
    let log = AuditLog::open(key.clone(), options.clone(), None).expect("open");
    for n in 0..10 {
        log.append(entry(n)).await.expect("append");
    }
    let early = log.checkpoint().await.expect("checkpoint");
    for n in 10..60 {
        log.append(entry(n)).await.expect("append");
    }
    drop(log);
    let files = files::log_files(&options.path).expect("list");
    assert!(files.len() > 3, "{files:?}");
    let holding = files
        .iter()
        .rposition(|f| files::first_seq(f).is_some_and(|first| first <= early.seq))
        .expect("a file holds the checkpoint");
    assert!(
        holding + 1 < files.len(),
        "the checkpoint is in a rotated file"
    );

    let later = files[holding + 1].clone();
    let aside = dir.path().join("aside");
    std::fs::rename(&later, &aside).expect("move aside");
    assert!(matches!(
        AuditLog::open(key.clone(), options.clone(), Some(early)),
        Err(AuditError::Resume(_))
    ));
    std::fs::rename(&aside, &later).expect("move back");

    let (files, last) = write_log_after(&key, options, 1, Some(early)).await;
    let verified = verify_files(&key, &files, expect_all(last)).expect("verify");
    assert_eq!(verified.last_seq, last.seq);
    assert!(verified.gaps.is_empty());
}

/// Records after the checkpoint (a crash before the next one) are
/// continued; only those up to the checkpoint are held against it.
#[tokio::test]
async fn records_written_after_the_checkpoint_are_continued() {
    let dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(SecretKey::generate().expect("key"));
    let options = AuditOptions::at(dir.path().join("audit.jsonl"));
    let log = AuditLog::open(key.clone(), options.clone(), None).expect("open");
    log.append(entry(1)).await.expect("append");
    let checkpoint = log.checkpoint().await.expect("checkpoint");
    log.append(entry(2)).await.expect("append");
    drop(log);
    let (files, last) = write_log_after(&key, options, 1, Some(checkpoint)).await;
    let verified = verify_files(&key, &files, expect_all(last)).expect("verify");
    assert!(verified.gaps.is_empty());
    assert_eq!(verified.records, last.seq);
}

/// An authentic record `u64::MAX` ends what verification can accept: a
/// record after it is tampering, not an overflow.
#[test]
fn verification_stops_at_the_last_sequence_number() {
    let key = SecretKey::generate().expect("key");
    let keys = record::AuditKeys::derive(&key).expect("keys");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = Vec::new();
    let mut prev = record::GENESIS;
    for seq in [u64::MAX - 1, u64::MAX, u64::MAX] {
        let start = log.len();
        record::append_line(&keys, &mut log, seq, "t", &prev, &entry(seq)).expect("encode");
        prev = record::line_hash(&log[start..]);
        log.push(b'\n');
    }
    let cut = log
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .map(|(i, _)| i + 1)
        .expect("two lines");
    std::fs::write(&path, &log[..cut]).expect("write");
    let files = [path.clone()];
    let verified = verify_files(&key, &files, Expectations::default()).expect("verifies");
    assert_eq!(
        (verified.first_seq, verified.last_seq),
        (u64::MAX - 1, u64::MAX)
    );

    std::fs::write(&path, &log).expect("write");
    let tampering = verify_files(&key, &files, Expectations::default());
    assert!(
        matches!(&tampering, Err(VerifyError::Tampered(t)) if t.line == 3),
        "{tampering:?}"
    );
}
