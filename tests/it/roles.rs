//! Roles kept in the keystore (issue 22): `admin`, `security-officer`,
//! `auditor` given by role bindings (exact identities or SPIFFE path
//! patterns), through the real server over mTLS; `--admin` identities as
//! break-glass; separation of duties; tampered bindings ignored; running
//! without `--admin` once roles are set.

use std::collections::BTreeSet;

use crate::common;

use common::cli::Tresor;
use common::{ADMIN, BILLING, TestServer, audit_records};
use tresor::identity::Identity;
use tresor_client::{Client, ClientError};

const OPS_ADMIN: &str = "spiffe://test.tresor/ns/ops/sa/keymaster";
const SECOND_ADMIN: &str = "spiffe://test.tresor/ns/ops/sa/reviewer";
const OFFICER: &str = "spiffe://test.tresor/ns/security/sa/oncall";
const OFFICERS: &str = "spiffe://test.tresor/ns/security/*";
const AUDITOR: &str = "spiffe://test.tresor/ns/audit/sa/reader";
const KEY: &str = "billing/records";

fn denied<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) {
    assert!(
        matches!(result, Err(ClientError::PermissionDenied(_))),
        "{what}: expected PERMISSION_DENIED, got {result:?}"
    );
}

/// A server whose break-glass admin bound the three roles (the officer
/// role by pattern) and created KEY for BILLING.
async fn server_with_roles() -> (TestServer, Client) {
    let server = TestServer::start().await;
    let root = server.fixture.sdk_at(server.addr, ADMIN).await;
    for (role, identity) in [
        ("admin", OPS_ADMIN),
        ("admin", SECOND_ADMIN),
        ("security-officer", OFFICERS),
        ("auditor", AUDITOR),
    ] {
        root.add_role_binding(role, identity).await.expect("bind");
    }
    root.create_key(KEY, BILLING, "").await.expect("key");
    (server, root)
}

#[tokio::test]
async fn each_role_does_its_duties_and_nothing_else() {
    let (server, _root) = server_with_roles().await;
    let sdk = |identity| server.fixture.sdk_at(server.addr, identity);
    let (admin, officer, auditor) = (sdk(OPS_ADMIN).await, sdk(OFFICER).await, sdk(AUDITOR).await);

    // admin: keys, grants, aliases, labels; not seal, backups, rotation.
    admin
        .create_key("ops/one", BILLING, "")
        .await
        .expect("admin creates keys");
    admin
        .create_grant(KEY, AUDITOR, &[common::proto::Operation::Decrypt])
        .await
        .expect("admin grants");
    admin
        .create_alias("alias/records", KEY)
        .await
        .expect("admin aliases");
    admin
        .set_key_labels(KEY, [("team", "billing")])
        .await
        .expect("admin labels");
    denied(admin.seal().await, "admin seals");
    denied(admin.create_backup().await, "admin backs up");
    denied(admin.rotate_root_key().await, "admin rotates the root key");
    denied(
        admin.verify_audit_log().await,
        "admin verifies the audit log",
    );

    // security officer (by pattern): seal, rotation, backups; not keys.
    denied(
        officer.create_key("sec/one", OFFICER, "").await,
        "officer creates keys",
    );
    denied(
        officer
            .create_grant(KEY, OFFICER, &[common::proto::Operation::Decrypt])
            .await,
        "officer grants",
    );
    denied(officer.disable_key(KEY).await, "officer disables keys");
    assert_eq!(officer.list_role_bindings().await.expect("list").len(), 4);
    assert!(
        !officer
            .create_backup()
            .await
            .expect("officer backs up")
            .is_empty()
    );
    officer
        .rotate_root_key()
        .await
        .expect("officer rotates the root key");
    assert!(officer.status().await.is_ok(), "any role reads the status");
    denied(
        officer.verify_audit_log().await,
        "officer verifies the audit log",
    );

    // auditor: read-only.
    let listed = auditor.list_keys("").await.expect("auditor lists");
    assert_eq!(listed.len(), 2, "an auditor sees every key: {listed:?}");
    let key = auditor.get_key(KEY).await.expect("auditor reads a key");
    assert_eq!(key.grants.len(), 1, "and its grants");
    assert!(matches!(
        auditor.get_key("no/such").await,
        Err(ClientError::NotFound(_))
    ));
    assert!(auditor.verify_audit_log().await.expect("verify").intact);
    assert_eq!(auditor.list_role_bindings().await.expect("list").len(), 4);
    assert_eq!(auditor.list_aliases("").await.expect("aliases").len(), 1);
    denied(
        auditor.create_key("audit/one", AUDITOR, "").await,
        "auditor creates keys",
    );
    denied(auditor.disable_key(KEY).await, "auditor disables keys");
    denied(auditor.seal().await, "auditor seals");
    denied(
        auditor.add_role_binding("auditor", SECOND_ADMIN).await,
        "auditor binds roles",
    );

    // No role gives data-plane use of a key.
    for (who, client) in [("admin", &admin), ("officer", &officer)] {
        denied(
            client.encrypt(KEY, b"x", &Default::default()).await,
            &format!("{who} encrypts under another service's key"),
        );
    }

    // The officer's seal works; while sealed, bindings are not recognised.
    officer.seal().await.expect("officer seals");
    denied(admin.disable_key(KEY).await, "a bound admin while sealed");
    denied(officer.unseal().await, "a bound officer unseals");
    let root = server.fixture.sdk_at(server.addr, ADMIN).await;
    root.unseal().await.expect("break-glass unseals");
    admin
        .disable_key(KEY)
        .await
        .expect("bound admin again after unseal");
}

#[tokio::test]
async fn an_admin_cannot_give_itself_a_role_but_a_second_admin_can() {
    let (server, _root) = server_with_roles().await;
    let admin = server.fixture.sdk_at(server.addr, OPS_ADMIN).await;
    let second = server.fixture.sdk_at(server.addr, SECOND_ADMIN).await;
    let refused = admin.add_role_binding("security-officer", OPS_ADMIN).await;
    let Err(ClientError::PermissionDenied(message)) = refused else {
        panic!("self-binding allowed: {refused:?}");
    };
    assert!(message.contains("another admin"), "{message}");
    // Nor through a pattern that covers itself.
    denied(
        admin
            .add_role_binding("auditor", "spiffe://test.tresor/ns/ops/*")
            .await,
        "a pattern covering the caller",
    );
    // A role it holds, to a pattern covering it, gives it nothing new.
    admin
        .add_role_binding("admin", "spiffe://test.tresor/ns/ops/*")
        .await
        .expect("a held role to a covering pattern");
    second
        .add_role_binding("security-officer", OPS_ADMIN)
        .await
        .expect("a second admin may");
    admin.seal().await.expect("now an officer too");
}

#[tokio::test]
async fn a_removed_binding_stops_at_once_and_bindings_are_audited() {
    let (server, root) = server_with_roles().await;
    let auditor = server.fixture.sdk_at(server.addr, AUDITOR).await;
    auditor.list_keys("").await.expect("auditor lists");
    assert_eq!(auditor.list_keys("").await.expect("list").len(), 1);
    root.remove_role_binding("auditor", AUDITOR)
        .await
        .expect("remove");
    assert!(
        auditor.list_keys("").await.expect("list").is_empty(),
        "no longer an auditor: only its own keys (none)"
    );
    denied(auditor.list_role_bindings().await, "a former auditor");
    assert!(matches!(
        root.remove_role_binding("auditor", AUDITOR).await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        root.add_role_binding("admin", OPS_ADMIN).await,
        Err(ClientError::AlreadyExists(_))
    ));
    for (role, identity, field) in [
        ("root", AUDITOR, "role"),
        ("auditor", "spiffe://test.tresor/ns/*/reader", "identity"),
        ("auditor", "spiffe://test.tresor/ns*", "identity"),
    ] {
        let refused = root.add_role_binding(role, identity).await;
        let Err(ClientError::InvalidArgument(message)) = refused else {
            panic!("{role} {identity}: {refused:?}");
        };
        assert!(message.starts_with(field), "{message}");
    }
    let fixture = server.stop().await;
    let records = audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let of = |operation: &str| {
        records
            .iter()
            .filter(|r| r["operation"] == operation && r["status"] == "OK")
            .count()
    };
    assert_eq!(of("AddRoleBinding"), 4);
    assert_eq!(of("RemoveRoleBinding"), 1);
    assert!(records.iter().any(|r| {
        r["operation"] == "RemoveRoleBinding"
            && r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("auditor") && d.contains(AUDITOR))
    }));
}

#[tokio::test]
async fn once_roles_are_set_the_server_runs_without_admin_flags() {
    let (server, _root) = server_with_roles().await;
    let fixture = server.stop().await;
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.admins = BTreeSet::new();
    // Unsealing needs approvers a sealed server can recognise.
    settings.service.unseal.approvers =
        Some(BTreeSet::from(
            [Identity::parse(OFFICER).expect("identity")],
        ));
    let server = TestServer::start_with_settings(fixture, settings).await;
    let sdk = |identity| server.fixture.sdk_at(server.addr, identity);
    denied(
        sdk(ADMIN).await.create_key("old/admin", ADMIN, "").await,
        "the old --admin",
    );
    sdk(OPS_ADMIN)
        .await
        .create_key("ops/two", BILLING, "")
        .await
        .expect("a bound admin manages keys");
    let officer = sdk(OFFICER).await;
    officer.seal().await.expect("a bound officer seals");
    officer.unseal().await.expect("an approver unseals");
}

#[tokio::test]
async fn a_binding_written_into_the_keystore_directly_gives_nothing() {
    let (server, root) = server_with_roles().await;
    // As long as OPS_ADMIN, so the copied record stays well-formed.
    let intruder = "spiffe://test.tresor/ns/dev/sa/intruder1";
    let fixture = server.stop().await;
    {
        // Someone with write access to the sled files copies a real
        // binding's record under another grantee.
        let db = sled::open(fixture.data_dir()).expect("open sled");
        let tree = db.open_tree("role_bindings").expect("tree");
        let (_, record) = tree.iter().next().expect("a binding").expect("read");
        let forged_key = format!("admin\n{intruder}");
        let at = record
            .windows(OPS_ADMIN.len())
            .position(|window| window == OPS_ADMIN.as_bytes())
            .expect("the grantee is in the record");
        let mut forged = record.to_vec();
        forged[at..at + intruder.len()].copy_from_slice(intruder.as_bytes());
        tree.insert(forged_key.as_bytes(), forged).expect("write");
        db.flush().expect("flush");
    }
    drop(root);
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let intruder_client = server.fixture.sdk_at(server.addr, intruder).await;
    denied(
        intruder_client.create_key("x/y", intruder, "").await,
        "a forged binding",
    );
    let root = server.fixture.sdk_at(server.addr, ADMIN).await;
    let listed = root.list_role_bindings().await.expect("list");
    assert!(
        listed.iter().all(|b| b.identity != intruder),
        "the forged binding is not listed: {listed:?}"
    );
    let fixture = server.stop().await;
    let records = audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    assert!(
        records
            .iter()
            .any(|r| r["operation"] == "tampered-role-binding"),
        "the forgery is audited"
    );
}

#[tokio::test]
async fn bindings_go_into_backups_and_come_back_with_a_restore() {
    let (server, root) = server_with_roles().await;
    let backup = root.create_backup().await.expect("backup");
    root.remove_role_binding("auditor", AUDITOR)
        .await
        .expect("remove");
    let fixture = server.stop().await;
    let file = fixture.dir.path().join("roles.tresorbk");
    std::fs::write(&file, backup).expect("write backup");
    let restored = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["backup", "restore", "--force", "--yes", "--data-dir"])
        .arg(fixture.data_dir())
        .arg("--master-key-file")
        .arg(fixture.master_key_file())
        .arg(&file)
        .output()
        .expect("run tresor backup restore");
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let auditor = server.fixture.sdk_at(server.addr, AUDITOR).await;
    assert_eq!(
        auditor
            .list_role_bindings()
            .await
            .expect("an auditor again")
            .len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_roles() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Tresor::new(&server, ADMIN, dir.path());
    assert_eq!(
        root.ok(&["role", "list"]),
        "no role bindings (only the server's --admin identities hold roles)\n"
    );
    assert_eq!(
        root.ok(&["role", "add", "security-officer", OFFICERS]),
        format!("{OFFICERS} now holds the role security-officer\n")
    );
    let listed = root.json(&["role", "list"]);
    assert_eq!(listed["bindings"][0]["role"], "security-officer");
    assert_eq!(listed["bindings"][0]["identity"], OFFICERS);
    assert_eq!(listed["bindings"][0]["created_by"], ADMIN);
    let table = root.ok(&["role", "list"]);
    assert!(table.starts_with("ROLE"), "{table}");
    let officer = Tresor::new(&server, OFFICER, dir.path());
    officer.ok(&["seal", "--yes"]);
    root.ok(&["unseal"]);
    let refused = officer.fails(&["role", "add", "admin", OFFICER], 1);
    assert!(
        refused.contains("permission denied") || refused.contains("may not"),
        "{refused}"
    );
    root.ok(&["role", "remove", "security-officer", OFFICERS, "--yes"]);
    officer.fails(&["seal", "--yes"], 1);
}
