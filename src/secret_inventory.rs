//! The inventory of every type that holds secret material directly, and
//! the checks that keep it true and complete (test-only module).
//!
//! # What is listed
//!
//! A type *holds secrets directly* when a field of it names one of the
//! secret storage types ([`STORAGE`]: `SecretKey`, `SecretBytes`,
//! `Zeroizing`, the HMAC state, and the third-party key types ring and
//! rcgen keep: `LessSafeKey`, `UnboundKey`, `KeyPair`, `Prk`), or when it
//! wipes itself (`impl Drop` calling `zeroize`, `impl Zeroize`,
//! `ZeroizeOnDrop`). Types that only hold such types through other listed
//! types (`Service` holds a `Keyring`, `AuditKeys` two `MacKey`s) are not
//! listed: redaction and wiping compose. A derived `Debug` prints each
//! field with that field's own `Debug`, which the listed type redacts, and
//! dropping a value drops each field, which wipes itself.
//!
//! # What is checked, per listed type
//!
//! - **Wiping.** [`Wipe::OnDrop`]: implements `ZeroizeOnDrop`, checked at
//!   compile time by the bound of [`wipes`]. [`Wipe::ByFields`]: every
//!   secret field is of a type that wipes itself (checked in the source).
//!   [`Wipe::Exception`]: a third-party key schedule that cannot be wiped
//!   without `unsafe`, with the reason; it must really hold one.
//! - **Debug.** [`Shown::Never`]: no `Debug` at all (no derive, no impl:
//!   checked in the source). [`Shown::Redacted`]: a value is built from
//!   known key bytes and printed with `{:?}` and `{:#?}`; the output must
//!   hold neither those bytes (hex, decimal, base64) nor anything that
//!   looks like key material (long hex, byte lists, base64 runs), which
//!   catches derived keys whose bytes the test cannot know.
//!
//! # Completeness
//!
//! [`inventory_matches_the_source`] scans every non-test `.rs` file under
//! `src/` and `crates/*/src/` but the test-only `crates/tresor-test-*`
//! (comments, string literals and `#[cfg(test)]` items removed),
//! finds every struct and enum that holds secrets directly by the rule
//! above, and fails naming any that is not listed here, and any listed one
//! that no longer exists or no longer holds secrets. A new secret type
//! cannot slip in unlisted, whatever module it is written in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use zeroize::ZeroizeOnDrop;

/// Names that mark a field as secret storage, and whether the type behind
/// each wipes itself on drop.
const STORAGE: &[(&str, bool)] = &[
    ("SecretKey", true),
    ("SecretBytes", true),
    ("Zeroizing", true),
    // RustCrypto's HMAC state, with the `zeroize` feature of hmac and sha2.
    ("Hmac", true),
    // ring's AEAD key schedules and HKDF PRKs, rcgen's key pair: ring
    // does not wipe its keys.
    ("LessSafeKey", false),
    ("UnboundKey", false),
    ("Prk", false),
    ("KeyPair", false),
];

/// How a listed type wipes its secrets.
enum Wipe {
    /// Implements `ZeroizeOnDrop`: the function is [`wipes`] for the type,
    /// which does not compile otherwise.
    OnDrop(fn()),
    /// Wipes nothing itself; every secret field is of a type that does.
    ByFields,
    /// Holds a third-party key schedule that cannot be wiped: why that is
    /// tolerable.
    Exception(&'static str),
}

/// What `Debug` shows of a listed type.
enum Shown {
    /// The type has no `Debug`.
    Never,
    /// Builds a value from the key bytes given and prints it with `{:?}`
    /// and `{:#?}`.
    Redacted(fn(&[u8; 32]) -> String),
}

/// One listed type.
struct Secret {
    /// The type's name as defined.
    name: &'static str,
    /// Its file, relative to the workspace root.
    file: &'static str,
    /// What it holds, for the reader.
    holds: &'static str,
    wipe: Wipe,
    debug: Shown,
}

/// Compiles only for types that wipe themselves on drop.
fn wipes<T: ZeroizeOnDrop>() {}

/// Both `Debug` forms of a value.
fn shown<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}\n{value:#?}")
}

/// A PEM private key whose body is `key` in base64.
fn pem(key: &[u8; 32]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(key);
    format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
}

fn secret_key(key: &[u8; 32]) -> tresor_crypto::SecretKey {
    tresor_crypto::SecretKey::from_bytes(key).expect("32 bytes")
}

/// Every type in the crate that holds secrets directly. Keep it sorted by
/// file.
const INVENTORY: &[Secret] = &[
    Secret {
        name: "ConnectionFiles",
        file: "src/cli/connection.rs",
        holds: "the client's TLS private key (PEM) as the CLI read it",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "Plain",
        file: "src/cli/env/crypt.rs",
        holds: "an env file value to encrypt",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "ChildEnv",
        file: "src/cli/env/exec.rs",
        holds: "the decrypted values tresor exec gives the command",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "Source",
        file: "src/cli/env/exec.rs",
        holds: "a value tresor exec passes on as written in an env file",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "Var",
        file: "src/cli/env/layout.rs",
        holds: "one dotenv assignment: its value and its line as written",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "DataKey",
        file: "crates/tresor-client/src/data_key_cache.rs",
        holds: "a plaintext data key from GenerateDataKey",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            shown(&tresor_client::DataKey {
                key: secret_key(k),
                wrapped: Vec::new(),
                key_version: 1,
            })
        }),
    },
    Secret {
        name: "Opening",
        file: "crates/tresor-client/src/data_key_cache.rs",
        holds: "an unwrapped data key cached for opening",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "ClientBuilder",
        file: "crates/tresor-client/src/lib.rs",
        holds: "the client's TLS private key (PEM)",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            shown(
                &tresor_client::Client::builder()
                    .endpoint("https://localhost:1")
                    .identity("cert", pem(k)),
            )
        }),
    },
    Secret {
        name: "TlsMaterial",
        file: "src/config/tls.rs",
        holds: "the server's TLS private key (PEM)",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            shown(&crate::config::TlsMaterial::new(
                "cert".into(),
                pem(k).into(),
                "ca".into(),
            ))
        }),
    },
    Secret {
        name: "EnvelopeWriter",
        file: "crates/tresor-crypto/src/format.rs",
        holds: "plaintext while a ciphertext is being built",
        wipe: Wipe::OnDrop(wipes::<tresor_crypto::EnvelopeWriter>),
        debug: Shown::Never,
    },
    Secret {
        name: "MacKey",
        file: "crates/tresor-crypto/src/mac.rs",
        holds: "an HMAC key derived for one purpose (audit records, backups)",
        wipe: Wipe::OnDrop(wipes::<tresor_crypto::MacKey>),
        debug: Shown::Redacted(|k| {
            shown(&tresor_crypto::MacKey::derive(&secret_key(k), b"inventory").expect("derive"))
        }),
    },
    Secret {
        name: "MessageKeys",
        file: "crates/tresor-crypto/src/sealing.rs",
        holds: "ring's AES-256-GCM key schedule of one message",
        wipe: Wipe::Exception(
            "ring keeps key schedules in its own types and does not wipe them; \
             this one lives for one seal or open call",
        ),
        debug: Shown::Never,
    },
    Secret {
        name: "SecretBytes",
        file: "crates/tresor-crypto/src/secret.rs",
        holds: "decrypted plaintext, plaintext data keys",
        wipe: Wipe::OnDrop(wipes::<tresor_crypto::SecretBytes>),
        debug: Shown::Redacted(|k| shown(&tresor_crypto::SecretBytes::new(k.to_vec()))),
    },
    Secret {
        name: "SecretKey",
        file: "crates/tresor-crypto/src/secret.rs",
        holds: "every 32-byte key: master, root, DEK, audit, backup, SDK data key",
        wipe: Wipe::OnDrop(wipes::<tresor_crypto::SecretKey>),
        debug: Shown::Redacted(|k| shown(&secret_key(k))),
    },
    Secret {
        name: "ChunkCipher",
        file: "crates/tresor-crypto/src/stream/cipher.rs",
        holds: "ring's AES-256-GCM key schedule of one stream",
        wipe: Wipe::Exception(
            "ring keeps key schedules in its own types and does not wipe them; \
             this one lives as long as one StreamSealer or StreamOpener",
        ),
        debug: Shown::Never,
    },
    Secret {
        name: "WipedKeyPair",
        file: "src/pki/mod.rs",
        holds: "a CA's or new leaf's ECDSA private key (rcgen); ring's parsed copy \
                inside is not wiped",
        wipe: Wipe::OnDrop(wipes::<crate::pki::WipedKeyPair>),
        debug: Shown::Never,
    },
    Secret {
        name: "CertifiedKey",
        file: "src/pki/mod.rs",
        holds: "an issued certificate's private key (PEM)",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            shown(&crate::pki::CertifiedKey {
                cert_pem: "cert".into(),
                key_pem: pem(k).into(),
            })
        }),
    },
    Secret {
        name: "Decrypted",
        file: "src/service/data.rs",
        holds: "plaintext a Decrypt returns",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            shown(&crate::service::Decrypted {
                key_id: crate::model::KeyId::parse("k").expect("key id"),
                plaintext: tresor_crypto::SecretBytes::new(k.to_vec()),
                key_version: crate::model::KeyVersion::FIRST,
            })
        }),
    },
    Secret {
        name: "DataKey",
        file: "src/service/data.rs",
        holds: "a plaintext data key GenerateDataKey returns",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            shown(&crate::service::DataKey {
                key_id: crate::model::KeyId::parse("k").expect("key id"),
                plaintext_key: tresor_crypto::SecretBytes::new(k.to_vec()),
                wrapped_key: Vec::new(),
                key_version: crate::model::KeyVersion::FIRST,
            })
        }),
    },
    Secret {
        name: "KeyScope",
        file: "src/service/data.rs",
        holds: "the DEKs one data-plane call fetched",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "Roots",
        file: "src/service/keyring.rs",
        holds: "the root key (two during a root-key rotation)",
        wipe: Wipe::ByFields,
        debug: Shown::Never,
    },
    Secret {
        name: "Keyring",
        file: "src/service/keyring.rs",
        holds: "the cache of unwrapped DEKs (and the roots)",
        wipe: Wipe::ByFields,
        debug: Shown::Redacted(|k| {
            use crate::service::Keyring;
            let keyring = Keyring::new(1, secret_key(k), std::num::NonZeroUsize::MIN);
            let id = crate::model::KeyId::parse("inventory/key").expect("key id");
            let version = crate::model::KeyVersion::FIRST;
            keyring.remember(&id, 0, version, std::sync::Arc::new(secret_key(k)));
            assert!(keyring.cached(&id, 0, version).is_some());
            shown(&keyring)
        }),
    },
];

/// A type definition found in the source.
#[derive(Debug)]
struct Definition {
    /// Secret storage names its fields mention.
    storage: BTreeSet<&'static str>,
    /// Whether it wipes itself (`impl Drop` with `zeroize`, `Zeroize`,
    /// `ZeroizeOnDrop`).
    wipes_itself: bool,
    /// Whether it has `Debug`, derived or written.
    has_debug: bool,
}

#[test]
fn inventory_matches_the_source() {
    let found = scan::secret_holders(Path::new(env!("CARGO_MANIFEST_DIR")));
    let listed: BTreeSet<(&str, &str)> = INVENTORY.iter().map(|s| (s.file, s.name)).collect();
    assert_eq!(listed.len(), INVENTORY.len(), "a type is listed twice");
    let unlisted: Vec<_> = found.keys().filter(|k| !listed.contains(k)).collect();
    let stale: Vec<_> = listed.iter().filter(|k| !found.contains_key(k)).collect();
    assert!(
        unlisted.is_empty(),
        "types that hold secrets but are not in INVENTORY (src/secret_inventory.rs): \
         {unlisted:?}; list them, with a redacted Debug (or none) and wiping on drop"
    );
    assert!(
        stale.is_empty(),
        "INVENTORY lists types that no longer hold secrets directly: {stale:?}"
    );
}

#[test]
fn every_listed_type_wipes_its_secrets() {
    let found = scan::secret_holders(Path::new(env!("CARGO_MANIFEST_DIR")));
    let wiping_types: BTreeSet<&str> = INVENTORY
        .iter()
        .filter(|s| !matches!(s.wipe, Wipe::Exception(_)))
        .map(|s| s.name)
        .collect();
    for secret in INVENTORY {
        let Some(def) = found.get(&(secret.file, secret.name)) else {
            continue; // reported by inventory_matches_the_source
        };
        let unwiped: Vec<&str> = def
            .storage
            .iter()
            .copied()
            .filter(|name| !STORAGE.contains(&(name, true)) && !wiping_types.contains(name))
            .collect();
        match secret.wipe {
            Wipe::OnDrop(compiles_only_if_it_wipes) => {
                compiles_only_if_it_wipes();
                assert!(
                    def.wipes_itself,
                    "{}: no ZeroizeOnDrop in the source",
                    secret.name
                );
            }
            Wipe::ByFields => assert!(
                unwiped.is_empty(),
                "{} ({}) holds {unwiped:?}, which do not wipe themselves",
                secret.name,
                secret.holds
            ),
            Wipe::Exception(why) => assert!(
                !unwiped.is_empty() && !why.is_empty(),
                "{}: listed as an exception but holds only wiping types; make it ByFields",
                secret.name
            ),
        }
    }
}

#[test]
fn no_listed_type_prints_key_material() {
    let key: [u8; 32] = std::array::from_fn(|i| 0xC0 + u8::try_from(i).expect("< 32"));
    let found = scan::secret_holders(Path::new(env!("CARGO_MANIFEST_DIR")));
    for secret in INVENTORY {
        let has_debug = found
            .get(&(secret.file, secret.name))
            .is_some_and(|def| def.has_debug);
        match secret.debug {
            Shown::Never => assert!(
                !has_debug,
                "{} has Debug: list it as Shown::Redacted with a value to print",
                secret.name
            ),
            Shown::Redacted(print) => {
                assert!(has_debug, "{}: no Debug in the source", secret.name);
                leaks::assert_no_key_material(secret.name, &print(&key), &key);
            }
        }
    }
}

#[test]
fn the_leak_detector_detects_leaks() {
    let key: [u8; 32] = std::array::from_fn(|i| 0xC0 + u8::try_from(i).expect("< 32"));
    let derived: [u8; 32] = std::array::from_fn(|i| 0x3D ^ u8::try_from(i * 7).expect("< 256"));
    for leaked in [
        hex::encode(key),
        hex::encode_upper(&key[..8]),
        format!("{key:?}"),
        format!("{:#?}", &key[..4]),
        pem(&key),
        format!("{derived:?}"),
        hex::encode(derived),
        pem(&derived),
    ] {
        let result = std::panic::catch_unwind(|| {
            leaks::assert_no_key_material("test", &format!("Thing {{ x: {leaked} }}"), &key);
        });
        assert!(result.is_err(), "not detected: {leaked}");
    }
    leaks::assert_no_key_material("test", "Keyring(REDACTED) 32 bytes v1", &key);
}

/// Recognising key material in `Debug` output.
mod leaks {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    /// Panics if `shown` contains `key` in any common encoding, or anything
    /// that looks like key bytes.
    pub(super) fn assert_no_key_material(name: &str, shown: &str, key: &[u8; 32]) {
        let decimal = |bytes: &[u8]| {
            bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let compact: String = shown.chars().filter(|c| !c.is_whitespace()).collect();
        let lower = compact.to_lowercase();
        let encodings = [
            hex::encode(&key[..6]),
            decimal(&key[..4]),
            STANDARD.encode(&key[..9]),
            URL_SAFE_NO_PAD.encode(&key[..9]),
        ];
        for encoded in encodings {
            assert!(
                !lower.contains(&encoded.to_lowercase()),
                "{name}: Debug shows the key bytes: {shown}"
            );
        }
        assert!(
            !looks_like_key(&compact),
            "{name}: Debug shows something like key material: {shown}"
        );
    }

    /// 16 hex digits in a row, 8 numbers in a list, or 24 base64
    /// characters in a row with upper case, lower case and digits.
    fn looks_like_key(s: &str) -> bool {
        let hex_run = longest_run(s, |c| c.is_ascii_hexdigit());
        let base64_runs = s
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/'))
            .filter(|run| run.len() >= 24)
            .any(|run| {
                run.chars().any(|c| c.is_ascii_uppercase())
                    && run.chars().any(|c| c.is_ascii_lowercase())
                    && run.chars().any(|c| c.is_ascii_digit())
            });
        let number_list = s.split(['[', '(']).any(|rest| {
            rest.split(',')
                .take_while(|item| {
                    let item = item.trim_end_matches([']', ')']);
                    !item.is_empty() && item.len() <= 3 && item.chars().all(|c| c.is_ascii_digit())
                })
                .count()
                >= 8
        });
        hex_run >= 16 || base64_runs || number_list
    }

    fn longest_run(s: &str, f: impl Fn(char) -> bool) -> usize {
        let mut best = 0;
        let mut run = 0;
        for c in s.chars() {
            run = if f(c) { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    }
}

/// Finding the types that hold secrets in the source text.
mod scan {
    use super::*;

    /// Every struct or enum in the workspace's sources (`src/` and
    /// `crates/*/src/` under `root`) that holds secrets directly, by (file
    /// relative to `root`, name).
    pub(super) fn secret_holders(
        root: &Path,
    ) -> BTreeMap<(&'static str, &'static str), Definition> {
        // Test-only crates (`tresor-test-*`: a fork helper, a Workload API
        // server issuing throwaway test CAs) are never part of a build of
        // tresor, so their keys are not tresor's secrets.
        let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
            .expect("read crates")
            .map(|e| e.expect("dir entry").path())
            .filter(|dir| {
                !dir.file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("tresor-test-"))
            })
            .map(|dir| dir.join("src"))
            .filter(|src| src.is_dir())
            .collect();
        crates.sort();
        let mut out = BTreeMap::new();
        for path in std::iter::once(root.join("src"))
            .chain(crates)
            .flat_map(|src| rust_files(&src))
        {
            let relative = path
                .strip_prefix(root)
                .expect("under the workspace root")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).expect("read source");
            let code = without_test_items(&strip_comments_and_literals(&text));
            for (name, def) in definitions(&code) {
                if !def.storage.is_empty() || def.wipes_itself {
                    // Leaked so the map can be keyed like INVENTORY; a test
                    // process, a few dozen short strings.
                    let key = (leak(relative.clone()), leak(name));
                    out.insert(key, def);
                }
            }
        }
        out
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// Non-test `.rs` files: `tests.rs` and `fixtures.rs` are test-only
    /// modules by this crate's convention.
    fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read src")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                out.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path
                    .file_name()
                    .is_some_and(|n| n == "tests.rs" || n == "fixtures.rs")
            {
                out.push(path);
            }
        }
        out
    }

    /// The code with comments removed and string and character literals
    /// emptied, so that neither can look like a definition.
    pub(super) fn strip_comments_and_literals(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if c == '/' && next == Some('/') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && next == Some('*') {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            } else if c == 'r'
                && matches!(next, Some('"' | '#'))
                && !chars
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p.is_alphanumeric() || *p == '_')
            {
                // A raw string: r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    match chars.get(j) {
                        None => break,
                        Some('"') if (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) => {
                            j += 1 + hashes;
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
                out.push_str("\"\"");
                i = j;
            } else if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            } else if c == '\'' {
                // A character literal ('x', '\n', '\u{..}') or a lifetime.
                let is_char = next == Some('\\') || chars.get(i + 2) == Some(&'\'');
                if is_char {
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                    i += 1;
                    out.push_str("' '");
                } else {
                    out.push(c);
                    i += 1;
                }
            } else {
                out.push(c);
                i += 1;
            }
        }
        out
    }

    /// The code without items marked `#[cfg(test)]`.
    fn without_test_items(code: &str) -> String {
        let mut out = String::with_capacity(code.len());
        let mut rest = code;
        while let Some(at) = rest.find("#[cfg(test)]") {
            out.push_str(&rest[..at]);
            let item = &rest[at..];
            // The item ends at its first `;` before any `{`, or at the
            // brace that closes its first `{`.
            let end = match (item.find('{'), item.find(';')) {
                (Some(open), Some(semi)) if semi < open => semi + 1,
                (Some(open), _) => open + closing(&item[open..]),
                (None, Some(semi)) => semi + 1,
                (None, None) => item.len(),
            };
            rest = &item[end..];
        }
        out.push_str(rest);
        out
    }

    /// Length up to and including the brace (or bracket) that closes the
    /// one `s` starts with.
    fn closing(s: &str) -> usize {
        let (open, close) = match s.chars().next() {
            Some('(') => ('(', ')'),
            Some('<') => ('<', '>'),
            _ => ('{', '}'),
        };
        let mut depth = 0usize;
        for (i, c) in s.char_indices() {
            if c == open {
                depth += 1;
            } else if c == close && !(open == '<' && s[..i].ends_with('-')) {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
        }
        s.len()
    }

    fn identifiers(s: &str) -> impl Iterator<Item = &str> {
        s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
    }

    /// The words of `code` with their byte offsets.
    fn words(code: &str) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in code.char_indices() {
            if c.is_alphanumeric() || c == '_' {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                out.push((s, &code[s..i]));
            }
        }
        if let Some(s) = start {
            out.push((s, &code[s..]));
        }
        out
    }

    /// The structs and enums of a file, with what the rule needs of each.
    pub(super) fn definitions(code: &str) -> Vec<(String, Definition)> {
        let words = words(code);
        let mut out = Vec::new();
        for pair in words.windows(2) {
            let [(_, keyword), (at, name)] = pair else {
                continue;
            };
            if !matches!(*keyword, "struct" | "enum") {
                continue;
            }
            let after = &code[at + name.len()..];
            let body = body_of(after);
            let storage = identifiers(body)
                .filter_map(|w| STORAGE.iter().find(|(s, _)| *s == w).map(|(s, _)| *s))
                .collect();
            out.push((
                (*name).to_owned(),
                Definition {
                    storage,
                    wipes_itself: wipes_itself(code, name),
                    has_debug: has_debug(code, name),
                },
            ));
        }
        out
    }

    /// The text between the name of a struct or enum and the end of its
    /// definition (generics, where clause and fields).
    fn body_of(after: &str) -> &str {
        let mut i = 0;
        let bytes = after.as_bytes();
        while i < bytes.len() {
            match bytes[i] {
                b'<' => i += closing(&after[i..]),
                b'{' | b'(' => return &after[..i + closing(&after[i..])],
                b';' => return &after[..i],
                _ => i += 1,
            }
        }
        after
    }

    /// The header of every `impl` block for `name`, with its body.
    fn impls_for<'a>(code: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        words(code)
            .into_iter()
            .filter(|(_, w)| *w == "impl")
            .filter_map(move |(at, _)| {
                let rest = &code[at..];
                let open = rest.find('{')?;
                let header = &rest[..open];
                let mut words = identifiers(header);
                let target = words.by_ref().skip_while(|w| *w != "for").nth(1)?;
                (target == name).then(|| (header, &rest[open..open + closing(&rest[open..])]))
            })
    }

    fn wipes_itself(code: &str, name: &str) -> bool {
        impls_for(code, name).any(|(header, body)| {
            let trait_words: Vec<&str> = identifiers(header).collect();
            trait_words.contains(&"ZeroizeOnDrop")
                || trait_words.contains(&"Zeroize")
                || (trait_words.contains(&"Drop") && body.contains("zeroize"))
        }) || derives(code, name, &["Zeroize", "ZeroizeOnDrop"])
    }

    fn has_debug(code: &str, name: &str) -> bool {
        impls_for(code, name).any(|(header, _)| identifiers(header).any(|w| w == "Debug"))
            || derives(code, name, &["Debug"])
    }

    /// Whether the attributes right before the definition of `name` derive
    /// any of `traits`.
    fn derives(code: &str, name: &str, traits: &[&str]) -> bool {
        let Some(at) = ["struct ", "enum "]
            .iter()
            .filter_map(|kw| {
                code.match_indices(&format!("{kw}{name}"))
                    .map(|(i, _)| i)
                    .find(|i| {
                        code[i + kw.len() + name.len()..]
                            .chars()
                            .next()
                            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
                    })
            })
            .next()
        else {
            return false;
        };
        // The attributes end at the previous item's `}` or `;`.
        let start = code[..at].rfind(['}', ';']).map_or(0, |i| i + 1);
        code[start..at].split("derive(").skip(1).any(|list| {
            identifiers(list.split(')').next().unwrap_or("")).any(|w| traits.contains(&w))
        })
    }

    #[test]
    fn the_scanner_finds_what_it_should() {
        let code = strip_comments_and_literals(
            r#"
            // struct Commented { k: SecretKey }
            const S: &str = "struct InString { k: SecretKey }";
            #[derive(Debug, Clone)]
            pub struct Plain<'a, T: Into<Vec<u8>>> where T: Clone { name: &'a str, t: T }
            #[derive(Default)]
            struct Holder { keys: Vec<std::sync::Arc<SecretKey>>, c: char }
            const C: char = '{';
            pub(crate) struct Tuple(Zeroizing<String>, u8);
            enum Either { A(LessSafeKey), B }
            struct Wiper { buf: Vec<u8> }
            impl Drop for Wiper { fn drop(&mut self) { self.buf.zeroize(); } }
            impl std::fmt::Debug for Wiper { }
            #[cfg(test)]
            mod tests { struct InTest { k: SecretKey } }
            "#,
        );
        let code = without_test_items(&code);
        let defs: BTreeMap<String, Definition> = definitions(&code).into_iter().collect();
        let names: Vec<&str> = defs.keys().map(String::as_str).collect();
        assert_eq!(names, ["Either", "Holder", "Plain", "Tuple", "Wiper"]);
        let storage = |n: &str| defs[n].storage.iter().copied().collect::<Vec<_>>();
        assert!(storage("Plain").is_empty());
        assert!(defs["Plain"].has_debug && !defs["Holder"].has_debug);
        assert_eq!(storage("Holder"), ["SecretKey"]);
        assert_eq!(storage("Tuple"), ["Zeroizing"]);
        assert_eq!(storage("Either"), ["LessSafeKey"]);
        assert!(defs["Wiper"].wipes_itself && defs["Wiper"].has_debug);
        assert!(!defs["Holder"].wipes_itself);
    }
}
