//! Fixed test vectors for every ciphertext format version.
//!
//! `keystore-fixtures/crypto-v<N>.txt` holds ciphertexts of format version N
//! made once by [`generate_crypto_fixtures`] (v1 before format v2 existed).
//! They must open forever: a failure of [`crypto_v1_fixtures_decrypt_forever`]
//! or [`crypto_v2_fixtures_decrypt_forever`] means a change broke every
//! ciphertext already stored by users. Never regenerate a file to make it
//! pass; fix the code (or introduce a new format and keep reading the old).
//!
//! The generator exists only to document how the files were made:
//! `cargo test -- --ignored generate_crypto_fixtures` writes the file of the
//! format `seal` currently writes, and refuses to overwrite a file that
//! already holds vectors.

use ring::digest;

use super::format::{CURRENT_FORMAT_VERSION, FORMAT_VERSION_V1, FORMAT_VERSION_V2};
use super::{Binding, Context, Envelope, Purpose, SecretKey, open, seal};

/// Where the vectors of one format version live.
fn fixture_path(format_version: u8) -> String {
    format!(
        "{}/../../keystore-fixtures/crypto-v{format_version}.txt",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The number of vectors a file must hold; catches a truncated file.
const EXPECTED_VECTORS: usize = 7;

/// The comment block opening a fixture file; `{N}` is the format version.
const FILE_HEADER: &str = "\
# tresor ciphertext format v{N}: fixed test vectors (docs/FORMAT.md).
#
# These ciphertexts must decrypt forever. Never edit or regenerate this file:
# if the test crypto_v{N}_fixtures_decrypt_forever fails, the code broke
# compatibility with ciphertexts already stored. It was written once by
#   cargo test -- --ignored generate_crypto_fixtures
# which refuses to overwrite a file that already holds vectors.
#
# Syntax: UTF-8 text, one `field: value` per line. The value is everything
# after the first ':' with one following space removed, verbatim (it may
# contain ':' and may be empty). Lines starting with '#' are comments; blank
# lines separate vectors. Each vector has these fields, in this order:
#   name:        free text
#   key:         the 32-byte key, hex
#   purpose:     data | wrap-data-key | wrap-root-key
#   key_id:      the key id, text (may be empty)
#   key_version: the key version, decimal u32
#   ctx_key: / ctx_value:   zero or more context pairs, two lines per pair
#   plaintext:   hex (may be empty)
#   ciphertext:  hex
";

/// One vector from the file.
struct Vector {
    name: String,
    key: Vec<u8>,
    purpose: Purpose,
    key_id: String,
    key_version: u32,
    context: Vec<(String, String)>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Data => "data",
        Purpose::WrapDataKey => "wrap-data-key",
        Purpose::WrapRootKey => "wrap-root-key",
        Purpose::DataKey => "data-key",
    }
}

fn parse_purpose(s: &str) -> Purpose {
    match s {
        "data" => Purpose::Data,
        "wrap-data-key" => Purpose::WrapDataKey,
        "wrap-root-key" => Purpose::WrapRootKey,
        "data-key" => Purpose::DataKey,
        other => panic!("unknown purpose {other:?}"),
    }
}

/// Parses the fixture file strictly: any deviation from the grammar in
/// `FILE_HEADER` panics.
/// The vectors of a fixture file, each as a cursor over its `field: value`
/// lines: `#` lines are comments, blank lines separate vectors. The stream
/// envelope's fixtures (`stream-v1.txt`) use the same syntax.
pub(super) fn fixture_records(text: &str) -> Vec<Fields<'_>> {
    let mut records: Vec<Vec<(usize, &str)>> = vec![Vec::new()];
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            records.push(Vec::new());
        } else if !line.starts_with('#') {
            records.last_mut().expect("never empty").push((n + 1, line));
        }
    }
    records
        .into_iter()
        .filter(|record| !record.is_empty())
        .map(|record| Fields {
            lines: record.into_iter().peekable(),
        })
        .collect()
}

/// The `field: value` lines of one fixture vector, read in order.
pub(super) struct Fields<'a> {
    lines: std::iter::Peekable<std::vec::IntoIter<(usize, &'a str)>>,
}

impl Fields<'_> {
    /// The value of the next line, which must be field `want`.
    pub(super) fn next(&mut self, want: &str) -> String {
        let (n, line) = self
            .lines
            .next()
            .unwrap_or_else(|| panic!("missing field {want}"));
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("line {n}: expected `{want}: ...`"));
        assert_eq!(name, want, "line {n}: fields out of order");
        value.strip_prefix(' ').unwrap_or(value).to_owned()
    }

    /// Whether the next line is field `name`.
    pub(super) fn next_is(&mut self, name: &str) -> bool {
        self.lines
            .peek()
            .is_some_and(|(_, line)| line.split_once(':').is_some_and(|(n, _)| n == name))
    }

    /// The context pairs at this point (`ctx_key:` / `ctx_value:` lines).
    pub(super) fn context_pairs(&mut self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        while self.next_is("ctx_key") {
            pairs.push((self.next("ctx_key"), self.next("ctx_value")));
        }
        pairs
    }

    /// Asserts that every line was read.
    pub(super) fn end(mut self) {
        if let Some((n, line)) = self.lines.next() {
            panic!("line {n}: unexpected {line:?}");
        }
    }
}

fn parse_vectors(text: &str) -> Vec<Vector> {
    fixture_records(text)
        .into_iter()
        .map(|mut f| {
            let vector = Vector {
                name: f.next("name"),
                key: hex::decode(f.next("key")).expect("key hex"),
                purpose: parse_purpose(&f.next("purpose")),
                key_id: f.next("key_id"),
                key_version: f.next("key_version").parse().expect("key_version u32"),
                context: f.context_pairs(),
                plaintext: hex::decode(f.next("plaintext")).expect("plaintext hex"),
                ciphertext: hex::decode(f.next("ciphertext")).expect("ciphertext hex"),
            };
            f.end();
            vector
        })
        .collect()
}

#[test]
fn crypto_v1_fixtures_decrypt_forever() {
    check_fixtures(FORMAT_VERSION_V1);
}

#[test]
fn crypto_v2_fixtures_decrypt_forever() {
    check_fixtures(FORMAT_VERSION_V2);
}

fn check_fixtures(format_version: u8) {
    let path = fixture_path(format_version);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors = parse_vectors(&text);
    assert_eq!(vectors.len(), EXPECTED_VECTORS, "{path} lost vectors");
    for v in &vectors {
        let key = SecretKey::from_bytes(&v.key).expect("32-byte key");
        let context: Context = v.context.iter().cloned().collect();
        assert_eq!(
            context.len(),
            v.context.len(),
            "{}: duplicate context key",
            v.name
        );
        let binding = Binding {
            purpose: v.purpose,
            key_id: &v.key_id,
            key_version: v.key_version,
            context: &context,
        };
        let envelope = Envelope::parse(&v.ciphertext).expect("fixture parses");
        assert_eq!(envelope.format_version(), format_version, "{}", v.name);
        assert_eq!(envelope.key_version(), v.key_version, "{}", v.name);
        let opened = open(&key, &binding, &v.ciphertext)
            .unwrap_or_else(|e| panic!("fixture {:?} no longer opens: {e}", v.name));
        assert_eq!(opened.expose(), &v.plaintext[..], "{}", v.name);

        // The vector is bound: a different key id does not open it.
        let other = Binding {
            key_id: "not-the-key-id",
            ..binding
        };
        assert!(open(&key, &other, &v.ciphertext).is_err(), "{}", v.name);
    }
}

/// A fixed, random-looking fixture key.
pub(super) fn fixture_key(n: u8) -> [u8; 32] {
    let d = digest::digest(
        &digest::SHA256,
        &[b"tresor fixture key ".as_slice(), &[n]].concat(),
    );
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// One generator input: name, fixture key number, purpose, key id, key
/// version, context pairs, plaintext.
type Case = (
    &'static str,
    u8,
    Purpose,
    &'static str,
    u32,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
);

/// Writes `keystore-fixtures/crypto-v<N>.txt` for the format `seal` writes
/// now. See the module docs: run once per format version, never again.
#[test]
#[ignore = "writes the fixture file; the vectors must stay fixed forever"]
fn generate_crypto_fixtures() {
    use std::fmt::Write as _;

    let path = fixture_path(CURRENT_FORMAT_VERSION);
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        parse_vectors(&existing).is_empty(),
        "{path} already holds vectors; they must stay fixed forever. \
         Delete the file by hand only if you are certain no ciphertext in the \
         wild depends on them."
    );

    let kib: Vec<u8> = (0..1024u32)
        .map(|i| u8::try_from((i * 7 + 3) % 256).expect("< 256"))
        .collect();
    let cases: Vec<Case> = vec![
        (
            "data, empty context, short text",
            1,
            Purpose::Data,
            "orders",
            1,
            vec![],
            b"hello, tresor".to_vec(),
        ),
        (
            "data, two context pairs, empty plaintext",
            2,
            Purpose::Data,
            "alias/payments-prod",
            7,
            vec![("tenant", "acme"), ("table", "invoices")],
            Vec::new(),
        ),
        (
            "data, unicode key id and context, 1 KiB plaintext, max key version",
            3,
            Purpose::Data,
            "ünïcødé/ключ",
            u32::MAX,
            vec![
                ("région", "Zürich"),
                ("emoji", "🔐🗝️"),
                ("", "empty key"),
                ("empty value", ""),
            ],
            kib,
        ),
        (
            "wrapped data key",
            4,
            Purpose::WrapDataKey,
            "orders",
            2,
            vec![],
            fixture_key(100).to_vec(),
        ),
        (
            "wrapped root key, key version 0, empty key id",
            5,
            Purpose::WrapRootKey,
            "",
            0,
            vec![],
            fixture_key(101).to_vec(),
        ),
        (
            "wrapped root key with context",
            6,
            Purpose::WrapRootKey,
            "root",
            3,
            vec![("keystore", "prod-eu-1"), ("master-key", "file")],
            fixture_key(102).to_vec(),
        ),
        (
            "data, separators inside strings",
            7,
            Purpose::Data,
            "a: b = c",
            42,
            vec![("key: with colon", "value: with: colons"), ("=", "==")],
            b"x".to_vec(),
        ),
    ];
    assert_eq!(cases.len(), EXPECTED_VECTORS);

    let mut out = FILE_HEADER.replace("{N}", &CURRENT_FORMAT_VERSION.to_string());
    for (name, key_n, purpose, key_id, key_version, pairs, plaintext) in cases {
        let raw_key = fixture_key(key_n);
        let key = SecretKey::from_bytes(&raw_key).expect("32 bytes");
        let context: Context = pairs.iter().copied().collect();
        let binding = Binding {
            purpose,
            key_id,
            key_version,
            context: &context,
        };
        let ciphertext = seal(&key, &binding, &plaintext).expect("seal");
        writeln!(out).expect("string");
        writeln!(out, "name: {name}").expect("string");
        writeln!(out, "key: {}", hex::encode(raw_key)).expect("string");
        writeln!(out, "purpose: {}", purpose_name(purpose)).expect("string");
        writeln!(out, "key_id: {key_id}").expect("string");
        writeln!(out, "key_version: {key_version}").expect("string");
        for (k, v) in context.iter() {
            writeln!(out, "ctx_key: {k}").expect("string");
            writeln!(out, "ctx_value: {v}").expect("string");
        }
        writeln!(out, "plaintext: {}", hex::encode(&plaintext)).expect("string");
        writeln!(out, "ciphertext: {}", hex::encode(&ciphertext)).expect("string");
    }
    let out = out.replace(": \n", ":\n"); // no trailing spaces for empty values
    std::fs::write(&path, out).expect("write fixture file");
}
