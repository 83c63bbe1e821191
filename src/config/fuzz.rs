//! The fuzz entry point of `tresor serve`'s flag parsing.

use super::*;

/// A stand-in file system for [`fuzz_serve_args`]: every path holds a
/// certificate and a private key (with a canary that must never show),
/// except paths containing `missing`, which do not exist.
struct FuzzFiles;

/// The text in [`FuzzFiles`]' private keys that no `Debug` output or error
/// may show.
const FUZZ_KEY_CANARY: &str = "fuzz-private-key-canary";

impl ConfigFiles for FuzzFiles {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        if !self.is_file(path) {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        if path == Path::new("/etc/hostname") {
            return Ok("fuzz-host\n".to_owned());
        }
        Ok(format!(
            "-----BEGIN CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n{FUZZ_KEY_CANARY}\n"
        ))
    }

    fn is_file(&self, path: &Path) -> bool {
        !path.as_os_str().is_empty() && !path.to_string_lossy().contains("missing")
    }
}

/// Fuzz entry point of the configuration parser, for
/// `fuzz/fuzz_targets/config.rs` and the proptest smoke test
/// `tests/it/fuzz_smoke.rs` (nothing else calls it).
///
/// Reads `data` as the arguments of `tresor serve`, one per line (invalid
/// UTF-8 replaced), parses them with clap and validates them into
/// [`Settings`] exactly as `tresor serve` does, except that files are read
/// from a stand-in: every path holds a certificate and a private key,
/// except paths containing `missing`. Accepted settings must keep the
/// documented limits, and neither they (under `Debug`) nor any error may
/// show the private key.
///
/// # Panics
///
/// Only when the library breaks one of these properties: a bug the fuzzer
/// reports. No input is expected to panic.
pub fn fuzz_serve_args(data: &[u8]) {
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    let text = String::from_utf8_lossy(data);
    let argv = std::iter::once("serve").chain(text.split('\n'));
    let args = match Serve::try_parse_from(argv) {
        Ok(serve) => serve.args,
        Err(e) => {
            assert!(!e.to_string().contains(FUZZ_KEY_CANARY));
            return;
        }
    };
    match Settings::from_args(args, &FuzzFiles, None) {
        Ok(settings) => {
            let service = &settings.service;
            assert!((1..=MAX_PLAINTEXT_CEILING).contains(&service.max_plaintext_bytes));
            assert!((1..=MAX_BATCH_ITEMS_CEILING).contains(&service.max_batch_items));
            if let Some(audit) = &service.audit {
                assert!(audit.options.max_file_bytes >= 1024 * 1024);
            }
            assert!(service.guard.anomaly.bucket >= std::time::Duration::from_millis(100));
            assert!(service.guard.anomaly.decrypt_factor >= 1.0);
            assert!(service.guard.seal_denial_identities >= 1);
            assert!(service.unseal.quorum >= 1);
            assert!(service.unseal.window >= std::time::Duration::from_secs(1));
            if let Some(backups) = &settings.backups {
                assert!(backups.interval >= std::time::Duration::from_secs(1));
            }
            let shown = format!("{settings:?}");
            assert!(
                !shown.contains(FUZZ_KEY_CANARY),
                "Debug shows the private key"
            );
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains(FUZZ_KEY_CANARY),
                "an error shows the private key"
            );
        }
    }
}
