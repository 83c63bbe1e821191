//! The deployment files (deploy/) against the real server, with no external
//! tool (deploy/test.sh runs kustomize, kubernetes-validate and promtool):
//!
//! - every metric the Prometheus rules and the Grafana dashboard query is
//!   one a running server serves on /metrics, and every label value they
//!   match on (operation, status, kind, cert, result, le) is one it uses;
//!   the SLO's lists of data-plane methods are exactly the
//!   `tresor.v1.Crypto` service of the proto;
//! - every tresor flag in the Kubernetes manifests is one `tresor serve
//!   --help` (or `tresor health --help`, for the probes) lists;
//! - the manifest's probes, run as written against a real server, behave
//!   as the README says they must: readiness fails while sealed, liveness
//!   and startup do not;
//! - the premise of the TresorAuditWritesFailing alert holds: a call whose
//!   audit record cannot be written is counted UNAVAILABLE while
//!   tresor_sealed is 0 and tresor_store_up is 1.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::metrics::{metric, scrape};
use common::{ADMIN, BILLING, Fixture, ServeProcess, TestServer, assert_code, eventually, proto};
use serde_json::Value;
use tonic::Code;

const KEY: &str = "billing/records";

/// The gRPC status code names, as tresor writes them in the `status` label.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Series that Prometheus makes itself, not tresor.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_documents(relative: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every PromQL expression: the rules' `expr`, the dashboard's targets and
/// the selectors of its `label_values(SELECTOR, LABEL)` variables. Each
/// with where it comes from.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rules = yaml_documents("deploy/prometheus/rules.yaml");
    for group in rules[0]["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().or(rule["record"].as_str());
            let name = name.expect("alert or record name");
            let expr = rule["expr"].as_str().expect("expr");
            out.push((format!("rules.yaml {name}"), expr.to_owned()));
        }
    }
    let dashboard: Value =
        serde_json::from_str(&read("deploy/grafana/tresor.json")).expect("tresor.json is JSON");
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("target expr");
                out.push((
                    format!("tresor.json panel {}", panel["title"]),
                    expr.to_owned(),
                ));
            }
            panels(&panel["panels"], out);
        }
    }
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"].as_str().expect("variable query");
            let selector = query
                .strip_prefix("label_values(")
                .and_then(|rest| rest.rsplit_once(','))
                .map(|(selector, _)| selector)
                .unwrap_or_else(|| panic!("not label_values(SELECTOR, LABEL): {query}"));
            out.push((
                format!("tresor.json variable {}", variable["name"]),
                selector.to_owned(),
            ));
        }
    }
    assert!(out.len() > 30, "too few expressions found: {out:?}");
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The `tresor_...` metric names in a PromQL expression (recorded series
/// are `tresor:...`, with colons, and are not names tresor serves).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in expr.match_indices("tresor_") {
        if expr[..at].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let name: String = expr[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

/// The label matchers `name OP "value"` of a PromQL expression.
fn matchers(expr: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !(bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')
            || (i > 0 && is_name_char(char::from(bytes[i - 1])))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let name = &expr[start..i];
        let rest = expr[i..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op) && !rest.starts_with("=="));
        let Some(op) = op else { continue };
        let after = rest[op.len()..].trim_start();
        let Some(quoted) = after.strip_prefix('"') else {
            continue;
        };
        let value = quoted.split('"').next().expect("closing quote");
        out.push((name.to_owned(), op.to_owned(), value.to_owned()));
    }
    out
}

/// The RPC names of one service of the proto.
fn proto_rpcs(service: &str) -> BTreeSet<String> {
    let proto = read("crates/tresor-proto/proto/tresor/v1/tresor.proto");
    let body = proto
        .split(&format!("service {service} {{"))
        .nth(1)
        .unwrap_or_else(|| panic!("no service {service} in the proto"));
    let body = body.split("\nservice ").next().expect("service body");
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .map(|rest| rest.split('(').next().expect("rpc name").trim().to_owned())
        .collect()
}

/// The long flags a `tresor SUBCOMMAND --help` lists.
fn help_flags(subcommand: &str) -> BTreeSet<String> {
    let out = common::cli::tresor(&[subcommand, "--help"]);
    assert!(out.status.success(), "tresor {subcommand} --help failed");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let flags: BTreeSet<String> = text
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line
                .strip_prefix('-')
                .filter(|rest| rest.chars().nth(1) == Some(','))
                .map_or(line, |rest| rest[2..].trim_start());
            let flag = line.strip_prefix("--")?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty()).then(|| format!("--{name}"))
        })
        .collect();
    assert!(
        flags.len() > 5,
        "too few flags in `tresor {subcommand} --help`: {flags:?}"
    );
    flags
}

/// The `--flag` of an argument (`--flag=value` or `--flag`).
fn flag_of(arg: &str) -> Option<&str> {
    arg.starts_with("--")
        .then(|| arg.split('=').next().expect("split"))
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// Every tresor command line of a manifest: container args (`serve ...`,
/// run by the image's ENTRYPOINT) and exec commands starting with the
/// tresor binary (probes), as (where, subcommand and arguments).
fn tresor_commands(value: &Value, at: &str, out: &mut Vec<(String, Vec<String>)>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let here = format!("{at}.{key}");
                if key == "args"
                    && let Some(args) = strings(item)
                {
                    out.push((here.clone(), args));
                }
                if key == "command"
                    && let Some(command) = strings(item)
                    && command.first().is_some_and(|c| c.ends_with("/tresor"))
                {
                    out.push((here.clone(), command[1..].to_vec()));
                }
                tresor_commands(item, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                tresor_commands(item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn manifest_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read deploy/kubernetes") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            manifest_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

#[test]
fn manifest_flags_are_flags_of_tresor() {
    let mut known = BTreeMap::new();
    for subcommand in ["serve", "health"] {
        known.insert(subcommand.to_owned(), help_flags(subcommand));
    }
    let root = repo_path("deploy/kubernetes");
    let mut files = Vec::new();
    manifest_files(&root, &mut files);
    files.sort();
    let mut serve_commands = 0;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(repo_path("")).expect("inside the repo");
        let relative = relative.to_str().expect("utf8 path");
        let mut commands = Vec::new();
        for (i, document) in yaml_documents(relative).iter().enumerate() {
            tresor_commands(document, &format!("{relative}#{i}"), &mut commands);
        }
        for (at, argv) in commands {
            let subcommand = argv.first().map(String::as_str).unwrap_or_default();
            let Some(flags) = known.get(subcommand) else {
                wrong.push(format!(
                    "{at}: not a tresor serve or health command: {argv:?}"
                ));
                continue;
            };
            serve_commands += usize::from(subcommand == "serve");
            for flag in argv[1..].iter().filter_map(|arg| flag_of(arg)) {
                checked += 1;
                if !flags.contains(flag) {
                    wrong.push(format!("{at}: `tresor {subcommand}` has no flag {flag}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The base and each overlay state a whole `serve` command line.
    assert_eq!(serve_commands, 4, "serve command lines in {files:?}");
    assert!(checked > 60, "only {checked} flags checked");
}

/// A metrics address nobody listens on (bound, then released).
fn free_local_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn labels_of(key: &str) -> BTreeMap<String, String> {
    let Some((_, rest)) = key.split_once('{') else {
        return BTreeMap::new();
    };
    rest.trim_end_matches('}')
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(name, value)| (name.to_owned(), value.trim_end_matches('"').to_owned()))
        .collect()
}

/// The probes of the base StatefulSet, as written: (kind, argv after the
/// binary).
fn base_probes() -> Vec<(String, Vec<String>)> {
    let documents = yaml_documents("deploy/kubernetes/base/statefulset.yaml");
    let containers = &documents[0]["spec"]["template"]["spec"]["containers"];
    let tresor = containers
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "tresor")
        .expect("a tresor container");
    ["startupProbe", "readinessProbe", "livenessProbe"]
        .into_iter()
        .map(|kind| {
            let command = strings(&tresor[kind]["exec"]["command"])
                .unwrap_or_else(|| panic!("{kind} is not an exec probe"));
            assert!(command[0].ends_with("/tresor"), "{kind}: {command:?}");
            (kind.to_owned(), command[1..].to_vec())
        })
        .collect()
}

/// Runs a probe's command with its files and address replaced by the test
/// server's; returns its exit code.
fn run_probe(argv: &[String], replace: &HashMap<&str, String>) -> i32 {
    let args: Vec<String> = argv
        .iter()
        .map(|arg| match arg.split_once('=') {
            Some((flag, _)) if replace.contains_key(flag) => format!("{flag}={}", replace[flag]),
            _ => arg.clone(),
        })
        .collect();
    let mut command = common::cli::command(&args);
    for name in [
        "TRESOR_ADDR",
        "TRESOR_CA",
        "TRESOR_CERT",
        "TRESOR_KEY",
        "TRESOR_SPIFFE_ENDPOINT",
    ] {
        command.env_remove(name);
    }
    let out = command.output().expect("run tresor health");
    out.status.code().expect("exit code")
}

/// A `tresor serve` process that a failed assertion does not leave
/// running.
struct Served(Option<ServeProcess>);

impl std::ops::Deref for Served {
    type Target = ServeProcess;
    fn deref(&self) -> &ServeProcess {
        self.0.as_ref().expect("running")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            server.kill_9();
        }
    }
}

#[tokio::test]
async fn monitoring_queries_only_what_the_server_exports_and_probes_follow_the_seal() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(["--metrics-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let mut server = Served(Some(ServeProcess::start_with(&flags, &[])));
    let metrics_addr = server.metrics_addr().await;

    // Traffic of every kind the queries look at: single calls, a batch.
    let mut admin = fixture.client_at(server.addr, ADMIN).await;
    admin.create_key(KEY, BILLING).await;
    let mut billing = fixture.client_at(server.addr, BILLING).await;
    let envelope = billing.encrypt(KEY, b"record", &[]).await.expect("encrypt");
    billing
        .decrypt(KEY, &envelope.ciphertext, &[])
        .await
        .expect("decrypt");
    billing
        .crypto
        .encrypt_batch(proto::EncryptBatchRequest {
            items: vec![proto::EncryptRequest {
                key_id: KEY.into(),
                plaintext: b"item".to_vec(),
                context: HashMap::new(),
            }],
        })
        .await
        .expect("encrypt batch");

    let samples = scrape(metrics_addr).await;
    let served: BTreeSet<String> = samples
        .keys()
        .map(|key| key.split('{').next().expect("name").to_owned())
        .collect();
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in samples.keys() {
        for (label, value) in labels_of(key) {
            values.entry(label).or_default().insert(value);
        }
    }
    let crypto = proto_rpcs("Crypto");
    let admin_rpcs = proto_rpcs("Admin");
    assert!(
        crypto.contains("Encrypt") && admin_rpcs.contains("Seal"),
        "{crypto:?}"
    );
    let single: BTreeSet<String> = crypto
        .iter()
        .filter(|rpc| !rpc.ends_with("Batch"))
        .cloned()
        .collect();
    values.insert(
        "operation".into(),
        crypto.union(&admin_rpcs).cloned().collect(),
    );
    values.insert("status".into(), GRPC_CODES.map(str::to_owned).into());

    let mut wrong = Vec::new();
    let mut names_checked = BTreeSet::new();
    for (at, expr) in expressions() {
        for name in metric_names(&expr) {
            if !served.contains(&name) {
                wrong.push(format!("{at}: {name} is not served on /metrics"));
            }
            names_checked.insert(name);
        }
        for (label, op, value) in matchers(&expr) {
            if value.starts_with('$') || value.contains(".*") || op.starts_with('!') {
                continue;
            }
            if label == "operation" && op == "=~" && value.contains('|') {
                let listed: BTreeSet<String> = value.split('|').map(str::to_owned).collect();
                if listed != crypto && listed != single {
                    wrong.push(format!(
                        "{at}: operation=~ lists {listed:?}; the data plane (service Crypto) is {crypto:?}, its single calls {single:?}"
                    ));
                }
            }
            let Some(allowed) = values.get(&label) else {
                continue;
            };
            if ["job", "instance", "namespace"].contains(&label.as_str()) {
                continue;
            }
            for alternative in value.split('|') {
                if !allowed.contains(alternative) {
                    wrong.push(format!(
                        "{at}: {label}{op}\"{value}\": {alternative} is not one of {allowed:?}"
                    ));
                }
            }
        }
    }
    for name in PROMETHEUS_SERIES {
        names_checked.remove(name);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The queries use most of what the server exports.
    for expected in [
        "tresor_requests_total",
        "tresor_request_duration_seconds_bucket",
        "tresor_sealed",
        "tresor_store_up",
        "tresor_audit_queue_depth",
        "tresor_anomaly_alerts_total",
        "tresor_tls_certificate_expiry_timestamp_seconds",
        "tresor_dek_cache_hits_total",
        "tresor_batch_items_total",
        "tresor_identity_requests_total",
        "tresor_audit_write_failures_total",
        "tresor_trace_spans_dropped_total",
    ] {
        assert!(names_checked.contains(expected), "no query uses {expected}");
    }

    // The manifest's probes, against this server: its files and address
    // replace the pod's.
    let health_dir = fixture.dir.path().join("health");
    fixture
        .ca
        .issue_client("spiffe://test.tresor/healthcheck")
        .expect("health certificate")
        .save(&health_dir, false)
        .expect("save");
    let replace: HashMap<&str, String> = HashMap::from([
        (
            "--addr",
            format!("https://127.0.0.1:{}", server.addr.port()),
        ),
        (
            "--ca",
            fixture
                .dir
                .path()
                .join("client-ca.pem")
                .display()
                .to_string(),
        ),
        ("--cert", health_dir.join("cert.pem").display().to_string()),
        ("--key", health_dir.join("key.pem").display().to_string()),
        ("--server-name", "localhost".to_owned()),
    ]);
    let probes = base_probes();
    for (kind, argv) in &probes {
        assert_eq!(
            run_probe(argv, &replace),
            0,
            "{kind} of a serving server: {argv:?}"
        );
    }
    admin.seal().await;
    for (kind, argv) in &probes {
        let want = if kind == "readinessProbe" { 1 } else { 0 };
        eventually(&format!("{kind} exits {want} while sealed"), || {
            let code = run_probe(argv, &replace);
            async move { (code == want).then_some(()) }
        })
        .await;
    }
    // Sealed: refusals are UNAVAILABLE and tresor_sealed says why; their
    // records were written, so TresorAuditWritesFailing stays quiet.
    assert_code(billing.encrypt(KEY, b"x", &[]).await, Code::Unavailable);
    let samples = scrape(metrics_addr).await;
    assert_eq!(metric(&samples, "tresor_sealed"), 1.0);
    assert!(
        metric(
            &samples,
            "tresor_requests_total{operation=\"Encrypt\",status=\"UNAVAILABLE\"}"
        ) >= 1.0
    );
    assert_eq!(metric(&samples, "tresor_audit_write_failures_total"), 0.0);
    // Waited for off the runtime, which must close the clients'
    // connections for the graceful drain to end.
    drop((admin, billing));
    let process = server.0.take().expect("running");
    let stopped = tokio::task::spawn_blocking(move || process.terminate())
        .await
        .expect("join");
    assert!(stopped.success());
}

#[tokio::test]
async fn an_unwritable_audit_log_shows_as_unavailable_while_unsealed_with_the_keystore_up() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    let disk_full = Arc::new(AtomicBool::new(false));
    settings
        .service
        .audit
        .as_mut()
        .expect("audit on")
        .options
        .fail_writes = Some(disk_full.clone());
    let metrics_addr = free_local_addr();
    settings.metrics_listen = Some(metrics_addr);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let (_admin, mut billing) = server.billing_key(KEY).await;

    disk_full.store(true, Ordering::SeqCst);
    let refused = assert_code(billing.encrypt(KEY, b"x", &[]).await, Code::Unavailable);
    assert!(refused.message().contains("audit"), "{refused:?}");

    eventually("the metrics endpoint", || async {
        tokio::net::TcpStream::connect(metrics_addr).await.ok()
    })
    .await;
    let samples = scrape(metrics_addr).await;
    assert!(
        metric(
            &samples,
            "tresor_requests_total{operation=\"Encrypt\",status=\"UNAVAILABLE\"}"
        ) >= 1.0
    );
    assert_eq!(metric(&samples, "tresor_sealed"), 0.0);
    assert_eq!(metric(&samples, "tresor_store_up"), 1.0);
    disk_full.store(false, Ordering::SeqCst);
    server.stop().await;
}

#[test]
fn expression_scanners_find_names_and_matchers() {
    let expr = r#"sum(rate(tresor_requests_total{operation=~"Encrypt|Decrypt", status = "OK"}[5m])) / tresor:x:ratio > 0 and up{job="tresor"} == 0"#;
    assert_eq!(
        metric_names(expr),
        BTreeSet::from(["tresor_requests_total".to_owned()])
    );
    assert_eq!(
        matchers(expr),
        vec![
            ("operation".into(), "=~".into(), "Encrypt|Decrypt".into()),
            ("status".into(), "=".into(), "OK".into()),
            ("job".into(), "=".into(), "tresor".into()),
        ]
    );
    assert_eq!(flag_of("--data-dir=/data"), Some("--data-dir"));
    assert_eq!(flag_of("serve"), None);
}
