//! Scheduled backups (`--backup-dir`, `--backup-interval`,
//! `--backup-retain-days`): a backup at start-up and then every interval,
//! written as `tresor-backup-<unix seconds>.tbk` (mode 0600), read back and
//! checked, and only then are backups older than the retention removed. The
//! newest backup is never removed, so pruning can never leave the directory
//! without a good backup.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::UnixTime;
use crate::service::Service;

/// Default time between scheduled backups.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Default retention, in days.
pub const DEFAULT_RETAIN_DAYS: u32 = 15;
const PREFIX: &str = "tresor-backup-";
const SUFFIX: &str = ".tbk";

/// Where and how often to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSchedule {
    /// Directory for backup files.
    pub dir: PathBuf,
    /// Time between backups.
    pub interval: Duration,
    /// Backups older than this many days are removed (never the newest).
    pub retain_days: u32,
}

/// The file name of a backup made at `at`.
pub fn file_name(at: UnixTime) -> String {
    format!("{PREFIX}{at:012}{SUFFIX}")
}

fn backup_time(name: &str) -> Option<UnixTime> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

/// Backups in `dir`, oldest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<(UnixTime, PathBuf)>> {
    let mut found: Vec<(UnixTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            backup_time(name.to_str()?).map(|at| (at, entry.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Which backups to remove at `now`: older than `retain_days`, never the
/// newest.
pub fn expired(backups: &[(UnixTime, PathBuf)], now: UnixTime, retain_days: u32) -> Vec<PathBuf> {
    let horizon = now - i64::from(retain_days) * 86_400;
    let newest = backups.iter().map(|(at, _)| *at).max();
    backups
        .iter()
        .filter(|(at, _)| *at < horizon && Some(*at) != newest)
        .map(|(_, path)| path.clone())
        .collect()
}

fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Makes one backup, checks it, prunes. Returns the new file.
pub async fn backup_once(service: &Service, schedule: &BackupSchedule) -> Result<PathBuf, String> {
    let bytes = service.backup_now().await.map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&schedule.dir)
        .map_err(|e| format!("cannot create {}: {e}", schedule.dir.display()))?;
    let at = now();
    let path = schedule.dir.join(file_name(at));
    crate::fs::write_private_file(&path, &bytes, true)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let written =
        std::fs::read(&path).map_err(|e| format!("cannot read back {}: {e}", path.display()))?;
    service
        .check_backup(&written)
        .map_err(|e| format!("the backup just written does not verify ({e}); nothing pruned"))?;
    let backups = list(&schedule.dir).map_err(|e| e.to_string())?;
    for old in expired(&backups, at, schedule.retain_days) {
        match std::fs::remove_file(&old) {
            Ok(()) => tracing::info!(file = %old.display(), "removed an expired backup"),
            Err(e) => {
                tracing::warn!(file = %old.display(), error = %e, "cannot remove an expired backup")
            }
        }
    }
    Ok(path)
}

/// Runs the schedule until the task is aborted.
pub async fn run(service: Arc<Service>, schedule: BackupSchedule) {
    let mut tick = tokio::time::interval(schedule.interval);
    loop {
        tick.tick().await;
        match backup_once(&service, &schedule).await {
            Ok(path) => tracing::info!(file = %path.display(), "scheduled backup written"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> (UnixTime, PathBuf) {
        let t = 1_000_000_000 + days * 86_400;
        (t, PathBuf::from(file_name(t)))
    }

    #[test]
    fn names_round_trip_and_sort_by_time() {
        assert_eq!(backup_time(&file_name(1_795_714_281)), Some(1_795_714_281));
        assert_eq!(backup_time("other.tbk"), None);
        assert!(file_name(99) < file_name(100));
    }

    #[test]
    fn retention_keeps_recent_backups_and_always_the_newest() {
        let backups = vec![at(0), at(10), at(20), at(30)];
        let now = at(31).0;
        assert_eq!(expired(&backups, now, 15), vec![at(0).1, at(10).1]);
        // Everything old: the newest stays anyway.
        let now = at(400).0;
        assert_eq!(
            expired(&backups, now, 15),
            vec![at(0).1, at(10).1, at(20).1]
        );
        // A single backup is never removed.
        assert!(expired(&[at(0)], at(400).0, 15).is_empty());
    }
}
