//! `tresor envelope seal|open` against the real server: round trips at
//! the chunk boundaries, streams from and to the SDK, and a tampered
//! stream leaving no output file behind.

use std::collections::HashMap;
use std::path::Path;

use crate::common;

use common::cli::{Tresor, server_with_billing_key};

const KEY: &str = "billing/exports";

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn seal(cli: &Tresor, plain: &Path, sealed: &Path, chunk: &str) {
    cli.ok(&[
        "envelope",
        "seal",
        KEY,
        "--context",
        "export=2026-12",
        "--chunk-size",
        chunk,
        "--in",
        &p(plain),
        "--out",
        &p(sealed),
    ]);
}

fn open_args<'a>(sealed: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "envelope",
        "open",
        "--key-id",
        KEY,
        "--context",
        "export=2026-12",
        "--in",
        sealed,
        "--out",
        out,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_round_trip_at_every_chunk_boundary_and_with_the_sdk() {
    let (server, dir, _admin, billing) = server_with_billing_key(KEY).await;
    for len in [0, 1, 1023, 1024, 1025, 5 << 20] {
        let plain = dir.path().join(format!("plain-{len}"));
        std::fs::write(&plain, payload(len)).expect("write");
        let sealed = dir.path().join(format!("sealed-{len}"));
        let chunk = if len == 5 << 20 { "65536" } else { "1024" };
        seal(&billing, &plain, &sealed, chunk);
        let opened = dir.path().join(format!("opened-{len}"));
        billing.ok(&open_args(&p(&sealed), &p(&opened)));
        assert_eq!(
            std::fs::read(&opened).expect("read"),
            payload(len),
            "{len} bytes"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&opened).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    // The SDK opens what the CLI sealed, and the CLI what the SDK sealed.
    let sdk = server.fixture.sdk_at(server.addr, common::BILLING).await;
    let context = HashMap::from([("export".to_owned(), "2026-12".to_owned())]);
    let cli_sealed = std::fs::read(dir.path().join("sealed-1025")).expect("read");
    let mut opened = Vec::new();
    sdk.open_stream(&[KEY], &context, cli_sealed.as_slice(), &mut opened)
        .await
        .expect("the SDK opens the CLI's stream");
    assert_eq!(opened, payload(1025));
    let mut sdk_sealed = Vec::new();
    sdk.seal_stream(KEY, &context, payload(70_000).as_slice(), &mut sdk_sealed)
        .await
        .expect("seal");
    let from_sdk = dir.path().join("from-sdk");
    std::fs::write(&from_sdk, sdk_sealed).expect("write");
    let out = billing.run(&[
        "envelope",
        "open",
        "--key-id",
        KEY,
        "--context",
        "export=2026-12",
        "--in",
        &p(&from_sdk),
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout, payload(70_000), "stdout carries the plaintext");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_stream_leaves_no_output_file() {
    let (_server, dir, _admin, billing) = server_with_billing_key(KEY).await;
    let plain = dir.path().join("plain");
    std::fs::write(&plain, payload(10_000)).expect("write");
    let sealed = dir.path().join("sealed");
    seal(&billing, &plain, &sealed, "1024");
    let mut bytes = std::fs::read(&sealed).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    let tampered = dir.path().join("tampered");
    std::fs::write(&tampered, bytes).expect("write");
    let out = dir.path().join("out");
    let said = billing.fails(&open_args(&p(&tampered), &p(&out)), 1);
    assert!(said.contains("does not authenticate"), "{said}");
    assert!(
        !out.exists(),
        "no output file for a stream that did not authenticate"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(".tresor-envelope-")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A stream of another key is refused before tresor is asked.
    let said = billing.fails(
        &[
            "envelope",
            "open",
            "--key-id",
            "other/key",
            "--context",
            "export=2026-12",
            "--in",
            &p(&sealed),
            "--out",
            &p(&out),
        ],
        1,
    );
    assert!(said.contains("not one this call accepts"), "{said}");
    // And the wrong context does not authenticate.
    let said = billing.fails(
        &[
            "envelope",
            "open",
            "--key-id",
            KEY,
            "--context",
            "export=2027-01",
            "--in",
            &p(&sealed),
            "--out",
            &p(&out),
        ],
        1,
    );
    assert!(said.contains("does not authenticate"), "{said}");
    assert!(!out.exists());
}
