//! Fixed test vectors for the formats of MAC and deterministic keys.
//!
//! `keystore-fixtures/mac-v1.txt` holds MAC tokens (format 0x21) and
//! `keystore-fixtures/deterministic-v1.txt` deterministic ciphertexts
//! (format 0x11), each made once by the ignored generator below. Blind
//! indexes and equality-searchable columns store these bytes and compare
//! them with fresh ones, so unlike randomized ciphertexts they must not
//! only open forever: the same input must give the *same bytes* forever.
//! The tests check both. Never regenerate a file to make a test pass.

use super::fixtures::{Fields, fixture_key, fixture_records};
use super::{
    Binding, Context, MacLength, Purpose, SecretKey, deterministic_key_version, mac_token,
    mac_token_header, open_deterministic, seal_deterministic, verify_mac_token,
};

/// Which of the two formats a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Mac,
    Deterministic,
}

impl Format {
    fn file(self) -> String {
        let name = match self {
            Self::Mac => "mac-v1.txt",
            Self::Deterministic => "deterministic-v1.txt",
        };
        format!(
            "{}/../../keystore-fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn header(self) -> &'static str {
        match self {
            Self::Mac => MAC_HEADER,
            Self::Deterministic => DETERMINISTIC_HEADER,
        }
    }
}

const MAC_HEADER: &str = "\
# tresor MAC tokens, format 0x21 (docs/FORMAT.md): fixed test vectors.
#
# Blind indexes store these tokens: the same message under the same key,
# key id, version, context and length must give exactly these bytes
# forever. Never edit or regenerate this file: if the test
# mac_v1_fixtures_stay_fixed fails, the code broke every index already
# stored. Written once by
#   cargo test -p tresor-crypto -- --ignored generate_purpose_fixtures
#
# Syntax as in crypto-v2.txt. Fields, in order:
#   name, key (the version's 32-byte DEK, hex), key_id, key_version,
#   ctx_key:/ctx_value: pairs, length (HMAC bytes kept, 4 to 32),
#   input (the message, hex), output (the token, hex)
";

const DETERMINISTIC_HEADER: &str = "\
# tresor deterministic ciphertexts, format 0x11 (docs/FORMAT.md): fixed
# test vectors.
#
# Equality search stores these ciphertexts: the same plaintext under the
# same key, key id, version and context must give exactly these bytes
# forever, and they must open forever. Never edit or regenerate this file:
# if the test deterministic_v1_fixtures_stay_fixed fails, the code broke
# every column already stored. Written once by
#   cargo test -p tresor-crypto -- --ignored generate_purpose_fixtures
#
# Syntax as in crypto-v2.txt. Fields, in order:
#   name, key (the version's 32-byte DEK, hex), key_id, key_version,
#   ctx_key:/ctx_value: pairs, length (always 0 here), input (the
#   plaintext, hex), output (the ciphertext, hex)
";

/// The number of vectors each file must hold; catches a truncated file.
const EXPECTED_VECTORS: usize = 5;

struct Vector {
    name: String,
    key: Vec<u8>,
    key_id: String,
    key_version: u32,
    context: Vec<(String, String)>,
    length: u32,
    input: Vec<u8>,
    output: Vec<u8>,
}

fn parse(text: &str) -> Vec<Vector> {
    fixture_records(text)
        .into_iter()
        .map(|mut f: Fields<'_>| {
            let vector = Vector {
                name: f.next("name"),
                key: hex::decode(f.next("key")).expect("key hex"),
                key_id: f.next("key_id"),
                key_version: f.next("key_version").parse().expect("u32"),
                context: f.context_pairs(),
                length: f.next("length").parse().expect("u32"),
                input: hex::decode(f.next("input")).expect("input hex"),
                output: hex::decode(f.next("output")).expect("output hex"),
            };
            f.end();
            vector
        })
        .collect()
}

/// What `format` makes of one vector's inputs now.
fn compute(format: Format, key: &SecretKey, binding: &Binding<'_>, v: &Vector) -> Vec<u8> {
    match format {
        Format::Mac => {
            let length = MacLength::new(v.length).expect("length 4 to 32");
            mac_token(key, binding, length, &v.input).expect("mac")
        }
        Format::Deterministic => seal_deterministic(key, binding, &v.input).expect("seal"),
    }
}

fn check(format: Format) {
    let path = format.file();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors = parse(&text);
    assert_eq!(vectors.len(), EXPECTED_VECTORS, "{path} lost vectors");
    for v in &vectors {
        let key = SecretKey::from_bytes(&v.key).expect("32-byte key");
        let context: Context = v.context.iter().cloned().collect();
        let binding = Binding {
            purpose: Purpose::Data,
            key_id: &v.key_id,
            key_version: v.key_version,
            context: &context,
        };
        assert_eq!(
            compute(format, &key, &binding, v),
            v.output,
            "{}: the same input no longer gives the same bytes",
            v.name
        );
        let other = Binding {
            key_id: "not-the-key-id",
            ..binding
        };
        match format {
            Format::Mac => {
                assert_eq!(mac_token_header(&v.output).map(|h| h.0), Ok(v.key_version));
                verify_mac_token(&key, &binding, &v.input, &v.output)
                    .unwrap_or_else(|e| panic!("{}: no longer verifies: {e}", v.name));
                assert!(verify_mac_token(&key, &other, &v.input, &v.output).is_err());
            }
            Format::Deterministic => {
                assert_eq!(deterministic_key_version(&v.output), Ok(v.key_version));
                let opened = open_deterministic(&key, &binding, &v.output)
                    .unwrap_or_else(|e| panic!("{}: no longer opens: {e}", v.name));
                assert_eq!(opened.expose(), &v.input[..], "{}", v.name);
                assert!(open_deterministic(&key, &other, &v.output).is_err());
            }
        }
    }
}

#[test]
fn mac_v1_fixtures_stay_fixed() {
    check(Format::Mac);
}

#[test]
fn deterministic_v1_fixtures_stay_fixed() {
    check(Format::Deterministic);
}

/// One generator input: name, fixture key number, key id, key version,
/// context pairs, MAC length, input.
type Case = (
    &'static str,
    u8,
    &'static str,
    u32,
    Vec<(&'static str, &'static str)>,
    u32,
    Vec<u8>,
);

/// Writes both files. Run once; refuses to overwrite vectors.
#[test]
#[ignore = "writes the fixture files; the vectors must stay fixed forever"]
fn generate_purpose_fixtures() {
    use std::fmt::Write as _;

    let cases: [Case; EXPECTED_VECTORS] = [
        (
            "email, empty context",
            11,
            "crm/email-index",
            1,
            vec![],
            32,
            b"alice@example.com".to_vec(),
        ),
        (
            "email, tenant context, truncated",
            12,
            "crm/email-index",
            3,
            vec![("tenant", "42")],
            8,
            b"bob@example.com".to_vec(),
        ),
        (
            "empty message, shortest length",
            13,
            "a",
            1,
            vec![],
            4,
            Vec::new(),
        ),
        (
            "unicode everywhere, max version",
            14,
            "ünïcødé/ключ",
            u32::MAX,
            vec![("région", "Zürich"), ("", "empty key")],
            16,
            "Grüße 🔐".as_bytes().to_vec(),
        ),
        (
            "1 KiB message",
            15,
            "bulk/index",
            7,
            vec![("table", "orders"), ("column", "ssn")],
            32,
            (0..1024u32)
                .map(|i| u8::try_from(i % 251).expect("< 256"))
                .collect(),
        ),
    ];
    for format in [Format::Mac, Format::Deterministic] {
        let path = format.file();
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(parse(&existing).is_empty(), "{path} already holds vectors");
        let mut out = format.header().to_owned();
        for (name, key_n, key_id, key_version, pairs, length, input) in &cases {
            let raw_key = fixture_key(*key_n);
            let key = SecretKey::from_bytes(&raw_key).expect("32 bytes");
            let context: Context = pairs.iter().copied().collect();
            let binding = Binding {
                purpose: Purpose::Data,
                key_id,
                key_version: *key_version,
                context: &context,
            };
            let length = if format == Format::Mac { *length } else { 0 };
            let v = Vector {
                name: (*name).to_owned(),
                key: raw_key.to_vec(),
                key_id: (*key_id).to_owned(),
                key_version: *key_version,
                context: Vec::new(),
                length,
                input: input.clone(),
                output: Vec::new(),
            };
            let output = compute(format, &key, &binding, &v);
            writeln!(out).expect("string");
            writeln!(out, "name: {name}").expect("string");
            writeln!(out, "key: {}", hex::encode(raw_key)).expect("string");
            writeln!(out, "key_id: {key_id}").expect("string");
            writeln!(out, "key_version: {key_version}").expect("string");
            for (k, v) in context.iter() {
                writeln!(out, "ctx_key: {k}").expect("string");
                writeln!(out, "ctx_value: {v}").expect("string");
            }
            writeln!(out, "length: {length}").expect("string");
            writeln!(out, "input: {}", hex::encode(input)).expect("string");
            writeln!(out, "output: {}", hex::encode(&output)).expect("string");
        }
        let out = out.replace(": \n", ":\n");
        std::fs::write(&path, out).expect("write fixture file");
    }
}
