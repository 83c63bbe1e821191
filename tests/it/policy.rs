//! Policy as code (issue 22): `tresor plan`, `tresor apply` and `tresor
//! export` against the real server, run as the real CLI binary; what they
//! did is checked through the SDK and the data plane.

use crate::common;

use std::path::Path;

use common::cli::{Tresor, code_and_text, text};
use common::proto::{self, KeyPurpose, KeyState, Operation};
use common::{ADMIN, BILLING, Fixture, SHIPPING, TestServer, ctx};
use serde_json::Value;
use tempfile::TempDir;

/// A second admin: the one who may grant what the first may not give
/// itself.
const ADMIN2: &str = "spiffe://test.tresor/admin2";
const RECORDS: &str = "billing/records";
const INDEX: &str = "crm/email-index";
const PODS: &str = "spiffe://test.tresor/ns/prod/*";
const POD: &str = "spiffe://test.tresor/ns/prod/sa/reports";

/// Keys with owner, description, labels, rotation and purpose; a plain
/// grant, a pattern grant with a constraint and an expiry, a disabled MAC
/// key, an alias.
const POLICY: &str = "\
version: 1
keys:
  - id: billing/records
    owner: spiffe://test.tresor/billing
    description: customer rows
    rotation_period: 90d
    labels:
      team: billing
      env: prod
    grants:
      - grantee: spiffe://test.tresor/shipping
        operations: [decrypt]
      - grantee: spiffe://test.tresor/ns/prod/*
        operations: [decrypt, encrypt]
        context_subset:
          tenant: \"42\"
        expires_at: 2099-01-01T00:00:00Z
  - id: crm/email-index
    owner: spiffe://test.tresor/billing
    purpose: mac
    state: disabled
aliases:
  - alias: alias/records
    key: billing/records
";

/// A fresh server, a folder, and the CLI as ADMIN.
async fn setup() -> (TestServer, TempDir, Tresor) {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    (server, dir, admin)
}

/// Writes `text` to `name` in `dir`; returns its path.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write policy file");
    path.display().to_string()
}

/// Runs `tresor args`; returns its exit code, stdout and stderr.
fn run(cli: &Tresor, args: &[&str]) -> (i32, String, String) {
    let out = cli.run(args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// `tresor --output json plan -f file [extra]`, which must exit `code`.
fn plan_json(cli: &Tresor, file: &str, extra: &[&str], code: i32) -> Value {
    let args = [&["--output", "json", "plan", "-f", file][..], extra].concat();
    let (exit, stdout, stderr) = run(cli, &args);
    assert_eq!(exit, code, "{stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The `action` of every change of a JSON plan, sorted.
fn actions(plan: &Value) -> Vec<String> {
    let mut all: Vec<String> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["action"].as_str().expect("action").to_owned())
        .collect();
    all.sort();
    all
}

/// `tresor grant create KEY --grantee GRANTEE --ops OPS [extra]` as `cli`.
fn grant(cli: &Tresor, key: &str, grantee: &str, ops: &str, extra: &[&str]) {
    let args = [
        &["grant", "create", key, "--grantee", grantee, "--ops", ops][..],
        extra,
    ]
    .concat();
    cli.ok(&args);
}

async fn key(server: &TestServer, id: &str) -> proto::KeyInfo {
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    sdk.get_key(id).await.expect("get key")
}

async fn key_ids(server: &TestServer) -> Vec<String> {
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    let keys = sdk.list_keys("").await.expect("list keys");
    keys.into_iter().map(|k| k.key_id).collect()
}

fn ops(grant: &proto::Grant) -> Vec<i32> {
    let mut ops = grant.operations.clone();
    ops.sort();
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_makes_everything_declared_and_a_second_apply_changes_nothing() {
    let (server, dir, admin) = setup().await;
    let file = write(dir.path(), "tresor.yaml", POLICY);
    let (code, stdout, _) = run(&admin, &["plan", "-f", &file]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("  + key billing/records (owner spiffe://test.tresor/billing"),
        "{stdout}"
    );
    assert!(stdout.contains("Plan: 6 to apply."), "{stdout}");
    assert!(key_ids(&server).await.is_empty(), "plan changed nothing");

    let applied = admin.ok(&["apply", "-f", &file]);
    assert!(
        applied.contains("Apply: 6 applied, 0 failed, 0 not attempted."),
        "{applied}"
    );

    let records = key(&server, RECORDS).await;
    assert_eq!(records.owner, BILLING);
    assert_eq!(records.description, "customer rows");
    assert_eq!(records.rotation_period_seconds, 90 * 86_400);
    assert_eq!(records.labels, ctx(&[("team", "billing"), ("env", "prod")]));
    assert_eq!(records.purpose, KeyPurpose::EncryptDecrypt as i32);
    assert_eq!(records.state, KeyState::Enabled as i32);
    assert_eq!(records.grants.len(), 2, "{:?}", records.grants);
    let plain = records
        .grants
        .iter()
        .find(|g| g.grantee == SHIPPING)
        .expect("plain grant");
    assert_eq!(ops(plain), vec![Operation::Decrypt as i32]);
    assert!(plain.context_subset.is_empty() && plain.expires_at_unix == 0);
    let pattern = records
        .grants
        .iter()
        .find(|g| g.grantee == PODS)
        .expect("pattern grant");
    assert_eq!(
        ops(pattern),
        vec![Operation::Encrypt as i32, Operation::Decrypt as i32]
    );
    assert_eq!(pattern.context_subset, ctx(&[("tenant", "42")]));
    assert_eq!(pattern.expires_at_unix, 4_070_908_800); // 2099-01-01T00:00:00Z
    let index = key(&server, INDEX).await;
    assert_eq!(index.purpose, KeyPurpose::Mac as i32);
    assert_eq!(index.state, KeyState::Disabled as i32);
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    let aliases = sdk.list_aliases("").await.expect("aliases");
    assert_eq!(aliases.len(), 1);
    assert_eq!(
        (aliases[0].alias.as_str(), aliases[0].key_id.as_str()),
        ("alias/records", RECORDS)
    );

    // The grants work on the data plane as declared.
    let mut billing = server.client(BILLING).await;
    let sealed = billing
        .encrypt(RECORDS, b"row", &[("tenant", "42")])
        .await
        .expect("encrypt")
        .ciphertext;
    let mut shipping = server.client(SHIPPING).await;
    shipping
        .assert_decrypts(RECORDS, &sealed, &[("tenant", "42")], b"row")
        .await;
    let mut pod = server.client(POD).await;
    pod.assert_decrypts(RECORDS, &sealed, &[("tenant", "42")], b"row")
        .await;
    assert!(
        pod.encrypt(RECORDS, b"x", &[("tenant", "43")])
            .await
            .is_err()
    );

    // Idempotent: nothing left to do, and plan says so with exit 0.
    let again = admin.ok(&["apply", "-f", &file]);
    assert!(
        again.contains(&format!("No changes: the server matches {file}.")),
        "{again}"
    );
    let plan = plan_json(&admin, &file, &[], 0);
    assert_eq!(plan["to_apply"], 0);
    assert!(actions(&plan).is_empty(), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_what_an_edit_changes_and_refuses_a_new_purpose() {
    let (server, dir, admin) = setup().await;
    let file = write(dir.path(), "tresor.yaml", POLICY);
    admin.ok(&["apply", "-f", &file]);
    let edited = POLICY
        .replace(
            "description: customer rows",
            "description: customer rows, EU",
        )
        .replace("env: prod", "env: staging")
        .replace(
            "operations: [decrypt]\n",
            "operations: [decrypt, reencrypt]\n",
        )
        .replace("    state: disabled\n", "    state: enabled\n");
    let file = write(dir.path(), "tresor.yaml", &edited);
    let (code, stdout, _) = run(&admin, &["plan", "-f", &file]);
    assert_eq!(code, 2, "{stdout}");
    for line in [
        "  ~ key billing/records: description \"customer rows\" -> \"customer rows, EU\"\n",
        "  ~ key billing/records: labels env=prod, team=billing -> env=staging, team=billing\n",
        "  + grant on billing/records to spiffe://test.tresor/shipping: reencrypt\n",
        "  ~ key crm/email-index: enable\n",
        "Plan: 4 to apply.\n",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from\n{stdout}");
    }
    let plan = plan_json(&admin, &file, &[], 2);
    assert_eq!(
        actions(&plan),
        ["enable_key", "grant", "set_description", "set_labels"]
    );
    assert_eq!(plan["to_apply"], 4);
    assert_eq!(plan["needs_prune"], 0);
    let grant = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["action"] == "grant")
        .expect("grant change");
    assert_eq!(grant["key_id"], RECORDS);
    assert_eq!(grant["grant"]["grantee"], SHIPPING);
    assert_eq!(
        grant["grant"]["operations"],
        serde_json::json!(["reencrypt"])
    );
    assert_eq!(grant["sigil"], "+");
    assert_eq!(grant["destructive"], false);
    assert_eq!(grant["applies"], true);
    let set = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["action"] == "set_description")
        .expect("set_description");
    assert_eq!(
        (set["from"].as_str(), set["to"].as_str()),
        (Some("customer rows"), Some("customer rows, EU"))
    );

    // Purpose is fixed: an error (exit 1, not 2), and nothing applied.
    let file = write(
        dir.path(),
        "tresor.yaml",
        &edited.replace("purpose: mac", "purpose: deterministic"),
    );
    let (code, _, stderr) = run(&admin, &["plan", "-f", &file]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("purpose of key crm/email-index is mac, the file says deterministic; purpose cannot change"), "{stderr}");
    let (code, _, _) = run(&admin, &["apply", "-f", &file]);
    assert_eq!(code, 1);
    assert_eq!(key(&server, RECORDS).await.description, "customer rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_aliases_not_in_the_file_stay_without_prune_and_go_with_it() {
    let (server, dir, admin) = setup().await;
    let file = write(dir.path(), "tresor.yaml", POLICY);
    admin.ok(&["apply", "-f", &file]);
    // Drift made by hand: an extra operation on a declared grant's
    // grantee, a grant to another identity, an alias.
    grant(&admin, RECORDS, SHIPPING, "encrypt", &[]);
    grant(&admin, RECORDS, ADMIN2, "decrypt", &[]);
    admin.ok(&["alias", "create", "alias/extra", RECORDS]);

    let (code, stdout, _) = run(&admin, &["plan", "-f", &file]);
    assert_eq!(
        code, 0,
        "destructive drift does not count without --prune: {stdout}"
    );
    assert!(stdout.contains("  - grant on billing/records to spiffe://test.tresor/admin2: revoke decrypt   (not applied without --prune)\n"), "{stdout}");
    assert!(
        stdout.contains(
            "  - alias alias/extra (-> billing/records)   (not applied without --prune)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("No changes to apply; 3 destructive changes not applied without --prune."),
        "{stdout}"
    );
    let applied = admin.ok(&["apply", "-f", &file]);
    assert!(
        applied.contains("needs --prune  - alias alias/extra"),
        "{applied}"
    );
    assert_eq!(key(&server, RECORDS).await.grants.len(), 3);

    let plan = plan_json(&admin, &file, &["--prune"], 2);
    assert_eq!(actions(&plan), ["delete_alias", "revoke", "revoke"]);
    assert_eq!(plan["to_apply"], 3);
    // Without a terminal, destructive changes need --yes: nothing done.
    let (code, _, stderr) = run(&admin, &["apply", "-f", &file, "--prune"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pass --yes"), "{stderr}");
    assert_eq!(key(&server, RECORDS).await.grants.len(), 3);

    admin.ok(&["apply", "-f", &file, "--prune", "--yes"]);
    let records = key(&server, RECORDS).await;
    assert_eq!(records.grants.len(), 2, "{:?}", records.grants);
    let shipping = records
        .grants
        .iter()
        .find(|g| g.grantee == SHIPPING)
        .expect("kept grant");
    assert_eq!(
        ops(shipping),
        vec![Operation::Decrypt as i32],
        "only the extra operation went"
    );
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    assert_eq!(sdk.list_aliases("").await.expect("aliases").len(), 1);
    plan_json(&admin, &file, &["--prune"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_a_file_that_plans_no_changes_and_fits_the_schema() {
    let (_server, dir, admin) = setup().await;
    // State made with the ordinary commands, not with apply.
    admin.ok(&[
        "key",
        "create",
        RECORDS,
        "--owner",
        BILLING,
        "--description",
        "rows: EU",
        "--rotation-period",
        "12h",
        "--label",
        "team=billing",
        "--label",
        "n=42",
    ]);
    admin.ok(&[
        "key",
        "create",
        INDEX,
        "--owner",
        BILLING,
        "--purpose",
        "mac",
    ]);
    admin.ok(&["key", "create", "old/gone", "--owner", BILLING]);
    admin.ok(&["key", "create", "old/off", "--owner", BILLING]);
    admin.ok(&["key", "disable", "old/off", "--yes"]);
    grant(&admin, RECORDS, SHIPPING, "decrypt,encrypt", &[]);
    grant(
        &admin,
        RECORDS,
        PODS,
        "decrypt",
        &["--context-equals", "tenant=42", "--expires-in", "30d"],
    );
    grant(
        &admin,
        INDEX,
        SHIPPING,
        "mac",
        &["--context-subset", "table=users"],
    );
    grant(&admin, INDEX, POD, "verify-mac", &["--expires-in", "2s"]);
    admin.ok(&["alias", "create", "alias/records", RECORDS]);
    admin.ok(&["alias", "create", "alias/gone", "old/gone"]);
    admin.ok(&[
        "key",
        "schedule-deletion",
        "old/gone",
        "--days",
        "7",
        "--yes",
    ]);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let out = dir.path().join("exported.yaml").display().to_string();
    let summary = admin.ok(&["export", "-o", &out]);
    assert!(summary.contains("wrote 3 keys and 1 aliases"), "{summary}");
    assert!(
        summary.contains("left out 1 keys pending deletion: old/gone"),
        "{summary}"
    );
    let exported = std::fs::read_to_string(&out).expect("exported file");
    for expected in [
        "purpose: mac",
        "rotation_period: 12h",
        "state: disabled",
        "context_equals:",
        "context_subset:",
        "expires_at:",
        "alias: alias/records",
        "description: \"rows: EU\"",
    ] {
        assert!(
            exported.contains(expected),
            "{expected:?} missing from\n{exported}"
        );
    }
    assert!(!exported.contains("old/gone"), "{exported}");

    // Round trip: nothing to change, even with --prune; the expired grant
    // is shown as expired.
    for extra in [&[][..], &["--prune"][..]] {
        let args = [&["plan", "-f", out.as_str()][..], extra].concat();
        let (code, stdout, stderr) = run(&admin, &args);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout.starts_with(&format!("No changes: the server matches {out}.")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("to {POD} expired at ")),
            "{stdout}"
        );
        assert!(
            stdout
                .contains("1 keys on the server are not in the file and are left alone: old/gone"),
            "{stdout}"
        );
    }
    let schema = schema();
    assert_fits(&schema, &exported);
    let stdout_copy = admin.ok(&["export", "-o", "-"]);
    assert_eq!(stdout_copy, exported);
}

fn schema() -> jsonschema::Validator {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/policy.schema.json")).expect("schema");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[track_caller]
fn assert_fits(schema: &jsonschema::Validator, yaml: &str) {
    let document: Value = serde_saphyr::from_str(yaml).expect("YAML");
    let errors: Vec<String> = schema
        .iter_errors(&document)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{yaml}");
}

#[test]
fn the_schema_accepts_the_example_and_every_field_and_refuses_unknown_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = schema();
    let example = std::fs::read_to_string(root.join("docs/examples/tresor.yaml")).expect("example");
    assert_fits(&schema, &example);
    // Every field the CLI reads is in the schema (additionalProperties is
    // false everywhere), and the schema names no field the CLI refuses.
    let every_field = format!("{POLICY}roles:\n  - role: auditor\n    identity: {PODS}\n")
        .replace("      - grantee: spiffe://test.tresor/shipping\n        operations: [decrypt]\n", "      - grantee: spiffe://test.tresor/shipping\n        operations: [decrypt]\n        context_equals: {a: b}\n")
        .replace("    purpose: mac\n", "    purpose: mac\n    description: x\n");
    assert_fits(&schema, &every_field);
    let document: Value = serde_saphyr::from_str(&every_field).expect("YAML");
    let mut used = std::collections::BTreeSet::new();
    collect_keys(&document, &mut used);
    let text = std::fs::read_to_string(root.join("docs/policy.schema.json")).expect("schema");
    let schema_json: Value = serde_json::from_str(&text).expect("schema");
    let mut declared = std::collections::BTreeSet::new();
    collect_properties(&schema_json, &mut declared);
    let unused: Vec<_> = declared.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "schema properties the test file does not use: {unused:?}"
    );
    for bad in [
        "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    colour: red\n",
        "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    grants:\n      - grantee: spiffe://x.test/b\n        operations: [decrypt]\n        context_equals: {a: b}\n        context_subset: {a: b}\n",
        "version: 2\n",
    ] {
        let document: Value = serde_saphyr::from_str(bad).expect("YAML");
        assert!(!schema.is_valid(&document), "{bad}");
    }
}

/// Every mapping key in a document, except those under labels and
/// contexts (data, not fields).
fn collect_keys(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                out.insert(key.clone());
                if !matches!(key.as_str(), "labels" | "context_equals" | "context_subset") {
                    collect_keys(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_keys(item, out)),
        _ => {}
    }
}

/// Every name under a `properties` of the schema.
fn collect_properties(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "properties" {
                    out.extend(
                        inner
                            .as_object()
                            .into_iter()
                            .flat_map(|p| p.keys().cloned()),
                    );
                }
                collect_properties(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_properties(item, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_is_refused_with_its_line_and_field_and_nothing_is_applied() {
    let (server, dir, admin) = setup().await;
    let good = "version: 1\nkeys:\n  - id: billing/a\n    owner: spiffe://test.tresor/billing\n";
    let cases = [
        (
            format!("{good}    colour: red\n"),
            "line 5 column 5: unknown field `colour`",
        ),
        (
            "version: 1\nkeys:\n  - id: billing/a\n    owner: spiffe://test.tresor/*/x\n"
                .to_owned(),
            "line 4 column 12",
        ),
        (
            format!("{good}  - id: billing/b\n    owner: \"not an identity\"\n"),
            "line 6 column 12: \"not an identity\" is not an identity",
        ),
        (
            format!(
                "{good}    grants:\n      - grantee: {SHIPPING}\n        operations: [decrypt]\n        context_equals: {{a: b}}\n        context_subset: {{a: b}}\n"
            ),
            ":6:18: keys[0].grants[0]: bad constraint: invalid argument: give context_equals or context_subset, not both",
        ),
        (
            format!("{good}roles:\n  - role: root\n    identity: {PODS}\n"),
            "line 6 column 11: unknown variant `root`, expected one of admin, security-officer, auditor",
        ),
        (
            format!(
                "{good}roles:\n  - role: auditor\n    identity: spiffe://test.tresor/*/reader\n"
            ),
            "line 7 column 15: \"spiffe://test.tresor/*/reader\": invalid argument: a grantee pattern is a SPIFFE id followed by /*",
        ),
        (
            format!("{good}    rotation_period: 90 days please\n"),
            "line 5 column 22: \"90 days please\" is not a duration",
        ),
        (
            format!("{good}  - id: billing/a\n    owner: {SHIPPING}\n"),
            ":5:9: keys[1].id: key billing/a is declared twice (first at line 3)",
        ),
        (
            format!("{good}aliases:\n  - alias: alias/a\n    key: billing/nope\n"),
            ":7:10: aliases[0].key: alias/a points at key billing/nope, which the file does not declare",
        ),
        (
            format!(
                "{good}    grants:\n      - grantee: {SHIPPING}\n        operations: [decrypt]\n        expires_at: next year\n"
            ),
            "line 8 column 21: \"next year\" is not an RFC 3339 UTC time",
        ),
    ];
    for (yaml, expected) in &cases {
        let file = write(dir.path(), "tresor.yaml", yaml);
        for command in ["plan", "apply"] {
            let (code, stdout, stderr) = run(&admin, &[command, "-f", &file]);
            assert_eq!(code, 1, "{command} {yaml}\n{stdout}{stderr}");
            assert!(
                stderr.contains(&format!(
                    "{file} is not a valid policy file (nothing was applied)"
                )),
                "{stderr}"
            );
            assert!(
                stderr.contains(expected),
                "{expected:?} missing for\n{yaml}\n{stderr}"
            );
        }
    }
    assert!(key_ids(&server).await.is_empty(), "nothing was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_midway_says_what_was_applied_and_running_again_completes() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings
        .service
        .admins
        .insert(tresor::identity::Identity::parse(ADMIN2).expect("identity"));
    let server = TestServer::start_with_settings(fixture, settings).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    let admin2 = Tresor::new(&server, ADMIN2, dir.path());
    // The grant to ADMIN itself is one the server refuses ADMIN (separation
    // of duties) but allows ADMIN2: it fails after two changes succeeded.
    let policy = format!(
        "version: 1\nkeys:\n  - id: billing/a\n    owner: {BILLING}\n  - id: billing/b\n    owner: {BILLING}\n    grants:\n      - grantee: {ADMIN}\n        operations: [decrypt]\naliases:\n  - alias: alias/a\n    key: billing/a\n"
    );
    let file = write(dir.path(), "tresor.yaml", &policy);
    let out = admin.run(&["apply", "-f", &file]);
    let (code, all) = code_and_text(&out);
    assert_eq!(code, 1, "{all}");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("applied        + key billing/a "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("applied        + key billing/b "),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        format!("FAILED         + grant on billing/b to {ADMIN}: decrypt"),
        "{stdout}"
    );
    assert!(lines[3].contains("permission denied"), "{stdout}");
    assert_eq!(
        lines[4], "not attempted  + alias alias/a -> billing/a",
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("apply stopped at a failed change: 2 applied, 1 failed, 1 not attempted; fix the cause and run `tresor apply` again"), "{all}");
    let b = key(&server, "billing/b").await;
    assert!(b.grants.is_empty());
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    assert!(sdk.list_aliases("").await.expect("aliases").is_empty());

    // Again as ADMIN: the keys are not made twice; the same grant fails.
    let (code, stdout, _) = run(&admin, &["--output", "json", "apply", "-f", &file]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    let outcomes: Vec<&str> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["failed", "not_attempted"]);
    assert!(
        report["changes"][0]["error"]
            .as_str()
            .expect("error")
            .contains("permission denied")
    );
    assert_eq!(
        (
            report["applied"].as_u64(),
            report["failed"].as_u64(),
            report["not_attempted"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );

    // Another admin completes it.
    let done = admin2.ok(&["apply", "-f", &file]);
    assert!(
        done.contains("Apply: 2 applied, 0 failed, 0 not attempted."),
        "{done}"
    );
    assert_eq!(key(&server, "billing/b").await.grants[0].grantee, ADMIN);
    assert_eq!(sdk.list_aliases("").await.expect("aliases").len(), 1);
    plan_json(&admin, &file, &["--prune"], 0);
}

/// Role bindings in a policy file: applied, idempotent, exported, and
/// removed only with --prune.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_bindings_are_applied_exported_and_pruned() {
    let (server, dir, admin) = setup().await;
    let officers = "spiffe://test.tresor/ns/security/*";
    let auditor = "spiffe://test.tresor/audit/reader";
    let roles = format!(
        "{POLICY}roles:\n  - role: security-officer\n    identity: {officers}\n  - role: auditor\n    identity: {auditor}\n"
    );
    let file = write(dir.path(), "tresor.yaml", &roles);
    let planned = plan_json(&admin, &file, &[], 2);
    assert!(
        planned.to_string().contains(officers),
        "the plan names the binding: {planned}"
    );
    admin.ok(&["apply", "-f", &file]);
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    let mut bound: Vec<(String, String)> = sdk
        .list_role_bindings()
        .await
        .expect("list")
        .into_iter()
        .map(|b| (b.role, b.identity))
        .collect();
    bound.sort();
    assert_eq!(
        bound,
        [
            ("auditor".to_owned(), auditor.to_owned()),
            ("security-officer".to_owned(), officers.to_owned())
        ]
    );
    plan_json(&admin, &file, &[], 0);
    let officer = server
        .fixture
        .sdk_at(server.addr, "spiffe://test.tresor/ns/security/sa/oncall")
        .await;
    officer
        .create_backup()
        .await
        .expect("the applied role works");

    // Export writes them; the export plans to no change.
    let exported = dir.path().join("exported.yaml");
    admin.ok(&["export", "-o", &exported.display().to_string()]);
    let text = std::fs::read_to_string(&exported).expect("exported");
    assert!(text.contains("roles:") && text.contains(officers), "{text}");
    plan_json(&admin, &exported.display().to_string(), &[], 0);

    // A binding made by hand stays without --prune, goes with it.
    sdk.add_role_binding("auditor", "spiffe://test.tresor/extra")
        .await
        .expect("bind by hand");
    admin.ok(&["apply", "-f", &file]);
    assert_eq!(sdk.list_role_bindings().await.expect("list").len(), 3);
    admin.ok(&["apply", "-f", &file, "--prune", "--yes"]);
    let left: Vec<String> = sdk
        .list_role_bindings()
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.identity)
        .collect();
    assert!(!left.iter().any(|i| i.ends_with("/extra")), "{left:?}");
    assert_eq!(left.len(), 2);
}
