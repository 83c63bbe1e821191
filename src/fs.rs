//! Private files on disk: written with a chosen mode (0600 for secrets),
//! fsynced with their directory, replaced atomically; private (0700)
//! directories. Used wherever tresor writes a key, a certificate, a backup
//! or a plaintext: `pki`, `master_key`, `backup`, `cli`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `contents` to `path` with mode 0600 (on unix; elsewhere the
/// platform default) and fsyncs the file and, on unix, its directory.
///
/// Without `overwrite` the file is created with `create_new`, so an existing
/// file is an [`io::ErrorKind::AlreadyExists`] error, and a partly written file
/// is removed on failure. With `overwrite` the contents go to a temporary file
/// in the same directory which is then renamed over `path`, so readers see the
/// old or the new contents, never a mix, and the result is 0600 even if the
/// old file was not.
pub fn write_private_file(path: &Path, contents: &[u8], overwrite: bool) -> io::Result<()> {
    write_file(path, contents, overwrite, 0o600)
}

/// [`write_private_file`] with a chosen unix mode (before umask).
pub fn write_file(path: &Path, contents: &[u8], overwrite: bool, mode: u32) -> io::Result<()> {
    if !overwrite {
        return write_new_file(path, contents, mode);
    }
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    // Unique per process (pid), per call (counter) and per run (nanos).
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}-{count}-{nanos}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    write_new_file(&tmp, contents, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        // Best effort: the rename error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent_dir(path)
}

/// `create_new` with `mode`, write, fsync; removes the file again if writing fails.
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // Best effort: the write error is the one worth reporting.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    sync_parent_dir(path)
}

/// Fsyncs the directory containing `path` (on unix), so that a new directory
/// entry survives a crash.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `create_dir_all`, with mode 0700 on unix for the directories it creates.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
