//! Unit tests of flag validation.

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: ServeArgs,
}

/// Settings from `tresor serve` flags, with placeholder TLS files and
/// master key in a temporary directory.
fn settings(extra: &[&str]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().expect("dir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let cert = file("cert.pem", "-----BEGIN CERTIFICATE-----");
    let key = file("key.pem", "-----BEGIN PRIVATE KEY-----");
    let master = file("master.key", "0123456789abcdef0123456789abcdef");
    let data = dir.path().join("data").display().to_string();
    let mut argv = vec![
        "serve",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--client-ca",
        &cert,
        "--master-key-file",
        &master,
    ];
    if !extra.contains(&"--store") {
        argv.extend(["--data-dir", &data]);
    }
    argv.extend(extra);
    Settings::try_from(Serve::try_parse_from(argv).expect("flags parse").args)
}

fn rejected(extra: &[&str]) -> ConfigError {
    settings(extra).expect_err("configuration must be refused")
}

#[test]
fn audit_defaults_to_the_data_dir_and_is_required_per_replica() {
    let defaults = settings(&[]).expect("settings");
    let audit = defaults.service.audit.expect("audit on by default");
    assert!(audit.options.path.ends_with("data/audit/audit.jsonl"));
    assert_eq!(audit.log_name, crate::service::LOCAL_LOG);
    assert!(defaults.metrics_listen.is_none() && defaults.alert_webhook.is_none());
    assert!(
        settings(&["--no-audit"])
            .expect("settings")
            .service
            .audit
            .is_none()
    );

    let store = [
        "--store",
        "postgres://localhost/tresor",
        "--replica-name",
        "a",
    ];
    assert_eq!(rejected(&store).flag, "--audit-file");
    let mut with_file = store.to_vec();
    with_file.extend(["--audit-file", "/var/lib/tresor/a.jsonl"]);
    let replica = settings(&with_file)
        .expect("settings")
        .service
        .audit
        .expect("audit");
    assert_eq!(replica.log_name, "a");
}

#[test]
fn transport_limits_default_to_the_documented_values_and_are_validated() {
    assert_eq!(
        settings(&[]).expect("settings").transport,
        TransportLimits::default()
    );
    let s = settings(&[
        "--max-connections",
        "10",
        "--tls-handshake-timeout",
        "500ms",
        "--idle-timeout",
        "20s",
        "--request-timeout",
        "5s",
        "--max-concurrent-streams",
        "8",
        "--max-header-list-bytes",
        "8192",
        "--http2-keepalive-interval",
        "5s",
        "--http2-keepalive-timeout",
        "2s",
    ])
    .expect("settings");
    let limits = s.transport;
    assert_eq!(limits.max_connections.get(), 10);
    assert_eq!(
        limits.tls_handshake_timeout,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(20));
    assert_eq!(limits.request_timeout, std::time::Duration::from_secs(5));
    assert_eq!(
        (limits.max_concurrent_streams, limits.max_header_list_bytes),
        (8, 8192)
    );
    assert_eq!(
        (limits.keepalive_interval, limits.keepalive_timeout),
        (
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(2)
        )
    );

    for (flags, flag) in [
        (&["--max-connections", "0"][..], "--max-connections"),
        (&["--max-connections", "1000001"][..], "--max-connections"),
        (
            &["--tls-handshake-timeout", "10ms"][..],
            "--tls-handshake-timeout",
        ),
        (
            &["--tls-handshake-timeout", "soon"][..],
            "--tls-handshake-timeout",
        ),
        (&["--request-timeout", "2h"][..], "--request-timeout"),
        (
            &["--max-concurrent-streams", "0"][..],
            "--max-concurrent-streams",
        ),
        (
            &["--max-header-list-bytes", "1024"][..],
            "--max-header-list-bytes",
        ),
        (
            &["--max-header-list-bytes", "2000000"][..],
            "--max-header-list-bytes",
        ),
        (
            &["--http2-keepalive-interval", "0s"][..],
            "--http2-keepalive-interval",
        ),
        (
            &["--http2-keepalive-timeout", "1h"][..],
            "--http2-keepalive-timeout",
        ),
        // Live idle clients answer pings at most every 30 s + 10 s.
        (&["--idle-timeout", "40s"][..], "--idle-timeout"),
        (
            &["--idle-timeout", "90s", "--http2-keepalive-interval", "80s"][..],
            "--idle-timeout",
        ),
    ] {
        assert_eq!(rejected(flags).flag, flag, "{flags:?}");
    }
}

#[test]
fn master_key_allowlist_and_kms_endpoints_are_validated() {
    let s = settings(&[
        "--allowed-master-key",
        "aws-kms:alias/next",
        "--allowed-master-key",
        "file:/etc/tresor/next.key",
        "--aws-endpoint",
        "https://kms.example",
    ])
    .expect("settings");
    let targets = &s.service.master_key_targets;
    assert!(targets.resolve("aws-kms:alias/next", "").is_ok());
    assert!(targets.resolve("file:/etc/tresor/next.key", "").is_ok());
    assert!(targets.resolve("file:/etc/shadow", "").is_err());
    assert!(
        settings(&[])
            .expect("settings")
            .service
            .master_key_targets
            .resolve("aws-kms:alias/next", "")
            .is_err(),
        "nothing is allowed by default"
    );
    for flags in [
        &[
            "--allowed-master-key",
            "aws-kms:k",
            "--aws-endpoint",
            "http://kms.example",
        ][..],
        &["--allowed-master-key", "file:relative/next.key"][..],
        &["--allowed-master-key", "vault:next"][..],
    ] {
        assert_eq!(rejected(flags).flag, "--allowed-master-key", "{flags:?}");
    }
}

#[test]
fn admins_are_typed_identities() {
    let admins = settings(&["--admin", "spiffe://x/admin", "--admin", "Ops.Example.org"])
        .expect("settings")
        .service
        .admins;
    let texts: Vec<&str> = admins.iter().map(Identity::as_str).collect();
    assert_eq!(texts, ["ops.example.org", "spiffe://x/admin"]);
    for bad in ["ops team", "cn:spiffe://x/admin", "admin\u{202E}"] {
        assert_eq!(rejected(&["--admin", bad]).flag, "--admin", "{bad}");
    }
}

#[test]
fn limits_alerts_and_metrics_flags_are_validated() {
    let s = settings(&[
        "--rate-limit",
        "spiffe://x/billing=500/s",
        "--rate-limit-default",
        "50/s",
        "--seal-on-anomaly",
        "decrypt_spike",
        "--anomaly-bucket",
        "10s",
        "--alert-webhook",
        "http://127.0.0.1:9093/alerts?team=kms",
        "--metrics-listen",
        "127.0.0.1:9464",
    ])
    .expect("settings");
    assert_eq!(s.service.max_batch_items, DEFAULT_MAX_BATCH_ITEMS);
    let guard = &s.service.guard;
    assert_eq!(guard.rate_limits.default, Some(crate::anomaly::Rate(50)));
    assert!(
        guard
            .seal_on
            .contains(&crate::anomaly::AlertKind::DecryptSpike)
    );
    assert_eq!(guard.anomaly.bucket, std::time::Duration::from_secs(10));
    let webhook = s.alert_webhook.expect("webhook");
    assert_eq!(webhook.authority, "127.0.0.1:9093");
    assert_eq!(webhook.path, "/alerts?team=kms");
    assert_eq!(
        s.metrics_listen,
        Some("127.0.0.1:9464".parse().expect("addr"))
    );

    for (flags, flag) in [
        (&["--rate-limit", "spiffe://x/billing"][..], "--rate-limit"),
        (&["--rate-limit-default", "0/s"][..], "--rate-limit-default"),
        (&["--seal-on-anomaly", "panic"][..], "--seal-on-anomaly"),
        (&["--anomaly-bucket", "1ms"][..], "--anomaly-bucket"),
        (
            &["--anomaly-decrypt-factor", "0.5"][..],
            "--anomaly-decrypt-factor",
        ),
        (
            &["--alert-webhook", "https://alerts.example/x"][..],
            "--alert-webhook",
        ),
        (&["--metrics-listen", "localhost"][..], "--metrics-listen"),
        (&["--audit-max-file-mib", "0"][..], "--audit-max-file-mib"),
        (&["--max-batch-items", "0"][..], "--max-batch-items"),
        (&["--max-batch-items", "100001"][..], "--max-batch-items"),
    ] {
        assert_eq!(rejected(flags).flag, flag, "{flags:?}");
    }
}
