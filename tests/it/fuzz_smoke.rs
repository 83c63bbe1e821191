//! Proptest smoke of the fuzz entry points: the helpers the cargo-fuzz
//! targets in `fuzz/` call, run on random bytes and on mutations of the
//! committed seeds in `fuzz/seeds/`, a few hundred cases each (seconds, so
//! it runs in CI; the long runs are `fuzz/README.md`'s). Also checks that
//! the committed seeds are exactly what [`seeds`] makes from
//! `keystore-fixtures/` and the README; `fuzz/seed.sh` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tresor::audit::record::{self, Entry, GENESIS, ItemEntry, RecordKind};

/// A fuzz entry point.
type Helper = fn(&[u8]);

/// Cases per target: half random bytes, half mutated seeds.
const CASES: u32 = 300;

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

fn read_seeds(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seeds_dir(target))
        .expect("fuzz/seeds/TARGET (run fuzz/seed.sh)")
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("seed"))
        .collect()
}

/// One edit of a seed: overwrite, insert, delete, or cut the rest.
fn apply(mut data: Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    for (at, byte, kind) in edits {
        let len = data.len();
        match (kind, len) {
            (0, 1..) => data[at.index(len)] = *byte,
            (1, _) => data.insert(at.index(len + 1), *byte),
            (2, 1..) => {
                data.remove(at.index(len));
            }
            (_, 1..) => data.truncate(at.index(len)),
            _ => {}
        }
    }
    data
}

/// Runs `helper` on [`CASES`] inputs: random bytes, and the target's seeds
/// with a few random edits each.
fn smoke(target: &str, helper: Helper) {
    let seeds = read_seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let random = prop::collection::vec(any::<u8>(), 0..600);
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..6);
    let mutated = (prop::sample::select(seeds), edits).prop_map(|(seed, e)| apply(seed, &e));
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop_oneof![random, mutated], |data| {
            helper(&data);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz helper of {target}: {e}"));
}

#[test]
fn ciphertext_helper_survives_random_and_mutated_input() {
    smoke("ciphertext", tresor_crypto::fuzz_ciphertext);
}

#[test]
fn stream_helper_survives_random_and_mutated_input() {
    smoke("stream", tresor_crypto::fuzz_stream);
}

#[test]
fn mac_token_helper_survives_random_and_mutated_input() {
    smoke("mac_token", tresor_crypto::fuzz_mac_token);
}

#[test]
fn deterministic_helper_survives_random_and_mutated_input() {
    smoke("deterministic", tresor_crypto::fuzz_deterministic);
}

#[test]
fn audit_helper_survives_random_and_mutated_input() {
    smoke("audit_record", tresor::audit::fuzz_audit);
}

#[test]
fn config_helper_survives_random_and_mutated_input() {
    smoke("config", tresor::config::fuzz_serve_args);
}

/// The seeds themselves pass, and the audit seeds really decode and verify
/// under the fuzz keys (or mutations would start from nothing).
#[test]
fn every_seed_passes_its_helper() {
    for (target, helper) in [
        ("ciphertext", tresor_crypto::fuzz_ciphertext as Helper),
        ("stream", tresor_crypto::fuzz_stream),
        ("mac_token", tresor_crypto::fuzz_mac_token),
        ("deterministic", tresor_crypto::fuzz_deterministic),
        ("audit_record", tresor::audit::fuzz_audit),
        ("config", tresor::config::fuzz_serve_args),
    ] {
        for seed in read_seeds(target) {
            helper(&seed);
        }
    }
    let keys = record::fuzz_keys();
    let log = std::fs::read(seeds_dir("audit_record").join("log")).expect("log seed");
    for line in log
        .strip_suffix(b"\n")
        .expect("newline")
        .split(|b| *b == b'\n')
    {
        record::decode_line(&keys, line).expect("seed lines authenticate");
    }
}

// ---- the seeds ----------------------------------------------------------

fn fixture(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The hex values of every `field: HEX` line of a fixture file.
fn hex_fields(path: &str, field: &str) -> Vec<Vec<u8>> {
    let prefix = format!("{field}: ");
    fixture(path)
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|value| hex::decode(value).expect("hex"))
        .collect()
}

/// The `output:` values of a MAC or deterministic fixture file.
fn output_seeds(path: &str) -> Vec<(String, Vec<u8>)> {
    hex_fields(path, "output")
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| (format!("vector-{i}"), bytes))
        .collect()
}

/// Ciphertexts of the crypto vectors and of the keystore fixture.
fn ciphertext_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for version in ["v1", "v2"] {
        let path = format!("keystore-fixtures/crypto-{version}.txt");
        for (i, bytes) in hex_fields(&path, "ciphertext").into_iter().enumerate() {
            seeds.push((format!("crypto-{version}-{i}"), bytes));
        }
    }
    let keystore = fixture("keystore-fixtures/keystore-v1/ciphertexts.txt");
    let rows = keystore.lines().filter(|line| !line.starts_with('#'));
    for (i, row) in rows.enumerate() {
        let hex = row.split_whitespace().nth(3).expect("ciphertext column");
        seeds.push((format!("keystore-v1-{i}"), hex::decode(hex).expect("hex")));
    }
    seeds
}

/// The streams of the stream vectors, of every version.
fn stream_seeds() -> Vec<(String, Vec<u8>)> {
    ["v1", "v2"]
        .into_iter()
        .flat_map(|version| {
            hex_fields(&format!("keystore-fixtures/stream-{version}.txt"), "stream")
                .into_iter()
                .enumerate()
                .map(move |(i, bytes)| (format!("stream-{version}-{i}"), bytes))
        })
        .collect()
}

/// A short audit log written under the fuzz keys as the writer writes it
/// (file start, a call with a context, a batch call, a checkpoint): the
/// whole file, and each line alone.
fn audit_seeds() -> Vec<(String, Vec<u8>)> {
    let keys = record::fuzz_keys();
    let context = BTreeMap::from([(
        "tenant".to_owned(),
        record::context_value_digest(&keys, "acme"),
    )]);
    let request = |operation: &'static str| Entry {
        kind: RecordKind::Request,
        request_id: Some("4f1c2a".into()),
        identity: Some("spiffe://example.org/billing".into()),
        peer: Some("127.0.0.1:50000".into()),
        key_id: Some("orders".into()),
        key_version: Some(3),
        status: Some("OK".into()),
        latency_us: Some(180),
        ..Entry::event(operation, "")
    };
    let entries = [
        Entry {
            kind: RecordKind::FileStart,
            ..Entry::event("file_start", "a new audit log begins")
        },
        Entry {
            context: Some(context.clone()),
            ..request("Encrypt")
        },
        Entry {
            items: Some(2),
            results: Some(vec![
                ItemEntry {
                    key_id: Some("orders".into()),
                    resolved_key_id: None,
                    key_version: Some(3),
                    context: Some(context),
                    context_oversized: None,
                    status: "OK".into(),
                },
                ItemEntry {
                    key_id: Some("payroll".into()),
                    resolved_key_id: None,
                    key_version: None,
                    context: None,
                    context_oversized: Some(record::OversizedContext {
                        pairs: 70,
                        bytes: 900,
                        digest: "hmac-sha256:01".into(),
                    }),
                    status: "PERMISSION_DENIED".into(),
                },
            ]),
            ..request("DecryptBatch")
        },
        Entry {
            kind: RecordKind::Gap,
            ..Entry::event("audit_gap", "records were missing at start")
        },
        Entry {
            kind: RecordKind::Checkpoint,
            ..Entry::event("checkpoint", "")
        },
    ];
    let mut log = Vec::new();
    let mut seeds = Vec::new();
    let mut prev = GENESIS;
    for (seq, entry) in (1u64..).zip(&entries) {
        let mut line = Vec::new();
        record::append_line(
            &keys,
            &mut line,
            seq,
            "2026-11-27T09:00:00.000Z",
            &prev,
            entry,
        )
        .expect("encode");
        prev = record::line_hash(&line);
        log.extend_from_slice(&line);
        log.push(b'\n');
        seeds.push((format!("line-{seq}"), line));
    }
    seeds.push(("log".to_owned(), log));
    seeds
}

/// Every `tresor serve` example of the README, one argument per line, and
/// the shapes the README's flag table describes that the examples leave
/// out (PostgreSQL store, limits, alerts, metrics).
fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let readme = fixture("README.md");
    let mut seeds = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("tresor serve") else {
            continue;
        };
        let mut command = rest.to_owned();
        while command.ends_with('\\') {
            command.pop();
            command.push(' ');
            command.push_str(lines.next().expect("continued line"));
        }
        let args: Vec<&str> = command.split_whitespace().collect();
        if !args.is_empty() {
            seeds.push((
                format!("readme-{}", seeds.len()),
                args.join("\n").into_bytes(),
            ));
        }
    }
    let common = "--tls-cert\nserver/cert.pem\n--tls-key\nserver/key.pem\n--client-ca\nca/ca.pem\n";
    let extra = [
        (
            "postgres",
            "--store\npostgres://tresor@db/tresor?sslmode=require\n--store-ca\ndb-ca.pem\n\
             --replica-name\na\n--audit-file\n/var/lib/tresor/a.jsonl\n\
             --master-key\naws-kms:alias/tresor\n--aws-endpoint\nhttp://127.0.0.1:5000",
        ),
        (
            "limits",
            "--data-dir\n/var/lib/tresor\n--master-key\nfile:/etc/tresor/master.key\n\
             --max-plaintext-bytes\n1048576\n--max-batch-items\n500\n--dek-cache-capacity\n100\n\
             --rewrap-batch-size\n50\n--backup-dir\n/backups\n--backup-interval\n30m\n\
             --backup-retain-days\n7\n--audit-max-file-mib\n8",
        ),
        (
            "alerts",
            "--data-dir\n/var/lib/tresor\n--master-key-file\n/etc/tresor/master.key\n\
             --rate-limit\nspiffe://example.org/billing=500/s\n--rate-limit-default\n50/s\n\
             --anomaly-bucket\n10s\n--anomaly-decrypt-factor\n4.5\n--anomaly-decrypt-floor\n100\n\
             --anomaly-new-keys\n5\n--anomaly-denials\n3\n--seal-on-anomaly\ndecrypt_spike\n\
             --seal-on-anomaly\nnew_keys\n--alert-webhook\nhttp://127.0.0.1:9093/alerts?team=kms\n\
             --metrics-listen\n127.0.0.1:9464\n--admin\nspiffe://example.org/admin\n--admin\nadmin.internal",
        ),
        (
            "no-audit",
            "--listen\n[::1]:7443\n--data-dir\n./data\n--master-key-file\nmissing.key\n--no-audit",
        ),
    ];
    for (name, args) in extra {
        seeds.push((name.to_owned(), format!("{common}{args}").into_bytes()));
    }
    seeds
}

/// Every seed: target, file name, contents.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut all = Vec::new();
    for (target, seeds) in [
        ("ciphertext", ciphertext_seeds()),
        ("stream", stream_seeds()),
        ("mac_token", output_seeds("keystore-fixtures/mac-v1.txt")),
        (
            "deterministic",
            output_seeds("keystore-fixtures/deterministic-v1.txt"),
        ),
        ("audit_record", audit_seeds()),
        ("config", config_seeds()),
    ] {
        all.extend(seeds.into_iter().map(|(name, bytes)| (target, name, bytes)));
    }
    all
}

#[test]
fn committed_seeds_are_made_from_the_fixtures() {
    let expected = seeds();
    for target in [
        "ciphertext",
        "stream",
        "mac_token",
        "deterministic",
        "audit_record",
        "config",
    ] {
        let mut want: Vec<(String, Vec<u8>)> = expected
            .iter()
            .filter(|(t, _, _)| *t == target)
            .map(|(_, name, bytes)| (name.clone(), bytes.clone()))
            .collect();
        want.sort();
        let mut have: Vec<(String, Vec<u8>)> = std::fs::read_dir(seeds_dir(target))
            .expect("seeds dir")
            .map(|entry| {
                let path = entry.expect("entry").path();
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read(&path).expect("read"))
            })
            .collect();
        have.sort();
        assert!(
            have == want,
            "fuzz/seeds/{target} differs from what the fixtures make: run fuzz/seed.sh"
        );
    }
}

/// Writes `fuzz/seeds/` (run by `fuzz/seed.sh`).
#[test]
#[ignore = "writes fuzz/seeds; run by fuzz/seed.sh"]
fn write_seeds() {
    for target in [
        "ciphertext",
        "stream",
        "mac_token",
        "deterministic",
        "audit_record",
        "config",
    ] {
        let dir = seeds_dir(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove old seeds");
        }
        std::fs::create_dir_all(&dir).expect("mkdir");
    }
    for (target, name, bytes) in seeds() {
        std::fs::write(seeds_dir(target).join(name), bytes).expect("write seed");
    }
}
