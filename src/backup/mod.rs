//! Backups: the file format ([`format`](mod@format): a versioned, MAC-protected
//! keystore snapshot) and scheduled backups with retention ([`schedule`]).
//! Taking and restoring a backup are service operations
//! (`crate::service::open_backup`, `restore_backup`); this module knows the
//! bytes and the files.

pub mod format;
pub mod schedule;

pub use format::{BackupError, FORMAT_VERSION, UncheckedBackup, encode, parse};
