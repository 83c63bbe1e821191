//! Writing a key and its certificate to disk as a pair (private files
//! from [`crate::fs`]).

use super::*;
use crate::fs::{create_private_dir, write_file, write_private_file};

/// Creates `dir` if needed, refuses existing files unless `overwrite`, then
/// writes the key (0600) and the certificate (0644).
pub(super) fn save_pair(
    dir: &Path,
    (cert_name, cert): (&str, &[u8]),
    (key_name, key): (&str, &[u8]),
    overwrite: bool,
) -> Result<(), PkiError> {
    create_private_dir(dir).map_err(|source| PkiError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    if !overwrite {
        // Check both first so that a refusal leaves nothing half-written.
        for path in [&key_path, &cert_path] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(PkiError::AlreadyExists { path: path.clone() });
            }
        }
    }
    let write_error = |path: &Path, source: io::Error| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            PkiError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            PkiError::Write {
                path: path.to_owned(),
                source,
            }
        }
    };
    write_private_file(&key_path, key, overwrite).map_err(|e| write_error(&key_path, e))?;
    write_file(&cert_path, cert, overwrite, 0o644).map_err(|e| {
        if !overwrite {
            // Do not leave a key without its certificate behind, which would
            // make the next attempt refuse; best effort.
            let _ = fs::remove_file(&key_path);
        }
        write_error(&cert_path, e)
    })
}
