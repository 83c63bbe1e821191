//! `tresor key create --purpose/--label`, `tresor key set-labels`,
//! `tresor key list --label`, `tresor mac` and `tresor verify-mac` with the
//! real binary against a real server (issue 21).

use crate::common;

use common::cli::{Tresor, text};
use common::{ADMIN, BILLING, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_indexes_from_the_cli() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    let billing = Tresor::new(&server, BILLING, dir.path());

    let created = admin.ok(&[
        "key",
        "create",
        "crm/email-index",
        "--owner",
        BILLING,
        "--purpose",
        "mac",
        "--label",
        "team=crm",
        "--label",
        "env=prod",
    ]);
    assert_eq!(
        created,
        format!("created key crm/email-index (version 1, owner {BILLING}, purpose mac)\n")
    );
    let shown = admin.json(&["key", "show", "crm/email-index"]);
    assert_eq!(shown["purpose"], "mac");
    assert_eq!(shown["labels"]["team"], "crm");
    admin.ok(&["key", "create", "crm/records", "--owner", BILLING]);
    let listed = admin.json(&["key", "list", "--label", "team=crm"]);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1));
    admin.ok(&["key", "set-labels", "crm/records", "--label", "team=crm"]);
    let listed = admin.json(&["key", "list", "--label", "team=crm"]);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(2));
    admin.ok(&["key", "set-labels", "crm/records", "--clear"]);
    assert_eq!(
        admin.json(&["key", "show", "crm/records"])["labels"],
        serde_json::json!({})
    );

    // mac, then verify-mac: exit 0 for the right message, 1 otherwise.
    let email = dir.path().join("email.txt");
    std::fs::write(&email, "a@example.com").expect("write");
    let email = email.to_str().expect("utf8");
    let args = [
        "mac",
        "crm/email-index",
        "--context",
        "table=users",
        "--in",
        email,
    ];
    let token = billing.ok(&args);
    assert_eq!(token, billing.ok(&args), "a token is stable");
    let token = token.trim();
    let verify = |message: &str, token: &str| {
        let path = dir.path().join("check.txt");
        std::fs::write(&path, message).expect("write");
        billing.run(&[
            "verify-mac",
            "crm/email-index",
            "--context",
            "table=users",
            "--in",
            path.to_str().expect("utf8"),
            "--mac",
            token,
        ])
    };
    let good = verify("a@example.com", token);
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(text(&good.stdout).starts_with("valid (key crm/email-index, version 1)"));
    let bad = verify("b@example.com", token);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("does not verify"),
        "{}",
        text(&bad.stderr)
    );

    // After a rotation, --all-versions prints both tokens, newest first.
    admin.ok(&["key", "rotate", "crm/email-index"]);
    let mut all = args.to_vec();
    all.extend(["--all-versions", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&billing.ok(&all)).expect("json");
    let macs = json["macs"].as_array().expect("macs");
    assert_eq!(macs.len(), 2);
    assert_eq!(macs[0]["key_version"], 2);
    assert_eq!(macs[1]["mac"], token);

    // Encrypting with a MAC key says why it cannot.
    let refused = billing.run(&["encrypt", "crm/email-index", "--in", email, "--base64"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("the key's purpose is MAC, which Encrypt does not serve"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_from_the_cli() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    let billing = Tresor::new(&server, BILLING, dir.path());
    admin.ok(&["key", "create", "pay/2026", "--owner", BILLING]);
    admin.ok(&["key", "create", "pay/2027", "--owner", BILLING]);
    assert_eq!(
        admin.ok(&["alias", "create", "alias/pay", "pay/2026"]),
        "alias/pay now points at pay/2026\n"
    );
    let plaintext = dir.path().join("card.txt");
    std::fs::write(&plaintext, "4111").expect("write");
    let plaintext = plaintext.to_str().expect("utf8");
    let sealed = billing.json(&["encrypt", "alias/pay", "--in", plaintext]);
    assert_eq!(
        sealed["key_id"], "pay/2026",
        "the CLI names the key to store"
    );
    admin.ok(&["alias", "update", "alias/pay", "pay/2027"]);
    let listed = admin.json(&["alias", "list"]);
    assert_eq!(listed["aliases"][0]["key_id"], "pay/2027");
    assert_eq!(
        billing.json(&["alias", "list"])["aliases"][0]["alias"],
        "alias/pay"
    );
    let refused = billing.run(&["alias", "delete", "alias/pay", "--yes"]);
    assert_eq!(refused.status.code(), Some(1));
    admin.ok(&["alias", "delete", "alias/pay", "--yes"]);
    assert_eq!(admin.ok(&["alias", "list"]), "no aliases\n");
}
