//! Offline compaction of a sled keystore: every live entry is copied into
//! fresh sled files, which then replace the old ones, so that nothing the
//! keystore removed (the wrapped DEKs of destroyed versions and deleted
//! keys) stays in its files. sled is log-structured: a removed value stays
//! in its log segment until sled happens to clean that segment, which it
//! may never do.
//!
//! The swap is crash-safe. Its state lives in the directory names:
//! 1. `.compact-build/`: the new files being written (an interrupted build
//!    is discarded);
//! 2. `.compact-ready/`: the new files, complete and synced;
//! 3. the old sled files move into `.compact-moving/`, which becomes
//!    `.compact-old/` once all are out;
//! 4. the new files move from `.compact-ready/` into the directory, then
//!    `.compact-ready/` and `.compact-old/` are removed.
//!
//! [`finish_interrupted`] completes whichever step a crash interrupted; the
//! keystore runs it before every open, so an interrupted compaction never
//! leaves sled looking at half a set of files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

const BUILD: &str = ".compact-build";
const READY: &str = ".compact-ready";
const MOVING: &str = ".compact-moving";
const OLD: &str = ".compact-old";

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionReport {
    /// Bytes of sled files before.
    pub bytes_before: u64,
    /// Bytes of sled files after.
    pub bytes_after: u64,
    /// Entries copied, over every tree.
    pub entries: u64,
}

fn io_error(what: &Path, err: io::Error) -> StoreError {
    StoreError::Backend(format!("compacting {}: {err}", what.display()))
}

/// Whether a directory entry is one of sled's own files (as opposed to the
/// audit log or anything else an operator keeps beside it).
fn is_sled_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

fn sled_entries(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        if entry.file_name().to_str().is_some_and(is_sled_file) {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

fn size_of(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| size_of(&entry.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}

fn sled_bytes(dir: &Path) -> Result<u64, StoreError> {
    Ok(sled_entries(dir)?.iter().map(|path| size_of(path)).sum())
}

/// fsyncs a file or a directory tree, so that renames that follow publish
/// complete data.
fn sync_tree(path: &Path) -> Result<(), StoreError> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| io_error(path, e))? {
            sync_tree(&entry.map_err(|e| io_error(path, e))?.path())?;
        }
    }
    fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| io_error(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|e| io_error(dir, e))
}

fn remove_all(path: &Path) -> Result<(), StoreError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Moves every entry of `from` into `to` (same file system).
fn move_entries(from: &[PathBuf], to: &Path) -> Result<(), StoreError> {
    for path in from {
        let Some(name) = path.file_name() else {
            continue;
        };
        let target = to.join(name);
        if fs::symlink_metadata(&target).is_ok_and(|meta| meta.is_dir()) {
            remove_all(&target)?;
        }
        fs::rename(path, &target).map_err(|e| io_error(path, e))?;
    }
    Ok(())
}

/// Completes a compaction that a crash interrupted in `dir`, or does
/// nothing. Idempotent: safe to run again after a crash inside it.
pub fn finish_interrupted(dir: &Path) -> Result<(), StoreError> {
    // The common case, every open: no compaction was interrupted, so no
    // directory to remove and no fsync.
    if ![BUILD, READY, MOVING, OLD]
        .iter()
        .any(|stage| dir.join(stage).exists())
    {
        return Ok(());
    }
    remove_all(&dir.join(BUILD))?;
    let ready = dir.join(READY);
    if ready.is_dir() {
        let old = dir.join(OLD);
        if !old.is_dir() {
            // Step 3: take every old sled file out of the way.
            let moving = dir.join(MOVING);
            fs::create_dir_all(&moving).map_err(|e| io_error(&moving, e))?;
            move_entries(&sled_entries(dir)?, &moving)?;
            sync_dir(dir)?;
            fs::rename(&moving, &old).map_err(|e| io_error(&moving, e))?;
            sync_dir(dir)?;
        }
        // Step 4: bring the new ones in.
        let fresh: Vec<PathBuf> = fs::read_dir(&ready)
            .map_err(|e| io_error(&ready, e))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| io_error(&ready, e))?;
        move_entries(&fresh, dir)?;
        sync_dir(dir)?;
        remove_all(&ready)?;
    }
    remove_all(&dir.join(MOVING))?;
    remove_all(&dir.join(OLD))?;
    sync_dir(dir)
}

/// Copies every tree of `source` into a fresh sled database in `target`.
fn copy_trees(source: &sled::Db, target: &Path) -> Result<u64, StoreError> {
    let backend = |e: sled::Error| StoreError::Backend(format!("compacting: {e}"));
    let fresh = sled::Config::new()
        .path(target)
        .flush_every_ms(None)
        .open()
        .map_err(backend)?;
    let mut entries = 0u64;
    for name in source.tree_names() {
        let from = source.open_tree(&name).map_err(backend)?;
        let to = fresh.open_tree(&name).map_err(backend)?;
        for entry in from.iter() {
            let (key, value) = entry.map_err(backend)?;
            to.insert(key, value).map_err(backend)?;
            entries += 1;
        }
    }
    fresh.flush().map_err(backend)?;
    Ok(entries)
}

/// Rewrites the sled keystore in `dir` (whose server must be stopped: the
/// keystore's lock is taken, and refused while a server holds it).
pub fn compact(dir: &Path) -> Result<CompactionReport, StoreError> {
    finish_interrupted(dir)?;
    let bytes_before = sled_bytes(dir)?;
    let build = dir.join(BUILD);
    let entries = {
        let store = super::SledKeyStore::open(dir)?;
        copy_trees(&store.db, &build)?
        // The old database closes here, before its files move.
    };
    sync_tree(&build)?;
    let ready = dir.join(READY);
    fs::rename(&build, &ready).map_err(|e| io_error(&build, e))?;
    sync_dir(dir)?;
    finish_interrupted(dir)?;
    Ok(CompactionReport {
        bytes_before,
        bytes_after: sled_bytes(dir)?,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyStore;
    use crate::store::conformance;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    /// Whether any file under `dir` holds `needle`.
    fn found_in_files(dir: &Path, needle: &[u8]) -> bool {
        fs::read_dir(dir).expect("read dir").any(|entry| {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                found_in_files(&path, needle)
            } else {
                contains(&fs::read(&path).expect("read file"), needle)
            }
        })
    }

    async fn store_with_a_removed_value(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        let store = super::super::SledKeyStore::open(dir).expect("open");
        conformance::ensure_root(&store).await;
        let secret = b"wrapped-dek-that-must-vanish-0123456789".to_vec();
        let kept = b"wrapped-dek-that-must-stay-9876543210".to_vec();
        store
            .meta
            .insert("doomed", secret.as_slice())
            .expect("insert");
        store.meta.insert("kept", kept.as_slice()).expect("insert");
        store.db.flush().expect("flush");
        store.meta.remove("doomed").expect("remove");
        store.db.flush().expect("flush");
        (secret, kept)
    }

    #[tokio::test]
    async fn compaction_drops_removed_values_from_the_files_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (secret, kept) = store_with_a_removed_value(&data).await;
        fs::write(data.join("audit.jsonl"), b"not sled's").expect("write");
        assert!(
            found_in_files(&data, &secret),
            "sled keeps removed values in its log: the search must see it first"
        );
        let report = compact(&data).expect("compact");
        assert!(report.entries > 0);
        assert!(!found_in_files(&data, &secret), "the removed value is gone");
        assert!(found_in_files(&data, &kept));
        assert_eq!(
            fs::read(data.join("audit.jsonl")).expect("read"),
            b"not sled's",
            "files that are not sled's stay"
        );
        let store = super::super::SledKeyStore::open(&data).expect("reopen");
        assert!(store.root().await.expect("root").is_some());
        assert_eq!(
            store.meta.get("kept").expect("get").as_deref(),
            Some(kept.as_slice())
        );
        assert_eq!(store.meta.get("doomed").expect("get"), None);
    }

    #[tokio::test]
    async fn a_compaction_interrupted_at_any_step_is_finished_on_open() {
        for interrupted_after in 0..4 {
            let dir = tempfile::tempdir().expect("tempdir");
            let data = dir.path().join("data");
            let (secret, kept) = store_with_a_removed_value(&data).await;
            // Build and publish the new files, as `compact` does.
            {
                let store = super::super::SledKeyStore::open(&data).expect("open");
                copy_trees(&store.db, &data.join(BUILD)).expect("copy");
            }
            if interrupted_after >= 1 {
                fs::rename(data.join(BUILD), data.join(READY)).expect("publish");
            }
            if interrupted_after >= 2 {
                // Some old files moved out, then the crash.
                let moving = data.join(MOVING);
                fs::create_dir_all(&moving).expect("mkdir");
                fs::rename(data.join("conf"), moving.join("conf")).expect("move");
            }
            if interrupted_after >= 3 {
                let moving = data.join(MOVING);
                move_entries(&sled_entries(&data).expect("entries"), &moving).expect("move");
                fs::rename(&moving, data.join(OLD)).expect("rename");
                // Some new files moved in, then the crash.
                fs::rename(data.join(READY).join("conf"), data.join("conf")).expect("move");
            }
            let store = super::super::SledKeyStore::open(&data).expect("open after crash");
            assert!(
                store.root().await.expect("root").is_some(),
                "interrupted after step {interrupted_after}"
            );
            assert_eq!(
                store.meta.get("kept").expect("get").as_deref(),
                Some(kept.as_slice())
            );
            drop(store);
            for leftover in [BUILD, READY, MOVING, OLD] {
                assert!(!data.join(leftover).exists(), "{leftover} is cleaned up");
            }
            if interrupted_after >= 1 {
                assert!(
                    !found_in_files(&data, &secret),
                    "a published compaction completes (after step {interrupted_after})"
                );
            }
        }
    }
}
