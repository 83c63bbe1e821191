//! Service tests over the real sled store and the real file master key: the
//! deletion purge with a controlled clock, property tests over rotation
//! sequences, and the keystore fixture that must decrypt forever.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;

use super::{Clock, Service, ServiceOptions};
use crate::error::Error;
use crate::identity::Identity;
use crate::master_key::FileMasterKey;
use crate::model::{KeyId, KeyVersion, Rpc};
use crate::store::{KeyStore, SledKeyStore};
use tresor_crypto::Context;

pub(super) const ADMIN: &str = "spiffe://unit/admin";
pub(super) const OWNER: &str = "spiffe://unit/owner";

/// A clock the test moves by hand.
#[derive(Debug, Default)]
pub(super) struct ManualClock(pub(super) AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(super) fn ident(raw: &str) -> Identity {
    Identity::parse(raw).expect("identity")
}

pub(super) fn key_id(raw: &str) -> KeyId {
    KeyId::parse(raw).expect("key id")
}

pub(super) fn options() -> ServiceOptions {
    ServiceOptions {
        max_plaintext_bytes: 1 << 20,
        dek_cache_capacity: NonZeroUsize::new(4).expect("nonzero"),
        rewrap_batch_size: 3,
        ..ServiceOptions::new(BTreeSet::from([ident(ADMIN)]))
    }
}

/// A new master key and sled keystore in `dir`.
pub(super) fn master_and_store(dir: &Path) -> (Arc<FileMasterKey>, Arc<SledKeyStore>) {
    let master_path = dir.join("master.key");
    FileMasterKey::generate(&master_path).expect("master key");
    let master = Arc::new(FileMasterKey::open(&master_path).expect("open master"));
    let store = Arc::new(SledKeyStore::open(&dir.join("data")).expect("sled"));
    (master, store)
}

pub(super) async fn open_service(
    dir: &Path,
    clock: Arc<ManualClock>,
) -> (Service, Arc<SledKeyStore>) {
    let master_path = dir.join("master.key");
    if !master_path.exists() {
        FileMasterKey::generate(&master_path).expect("master key");
    }
    let master = Arc::new(FileMasterKey::open(&master_path).expect("open master"));
    let store = Arc::new(SledKeyStore::open(&dir.join("data")).expect("sled"));
    let options = ServiceOptions {
        audit: Some(super::AuditSettings::in_data_dir(&dir.join("data"))),
        ..options()
    };
    let service = Service::open_with_clock(store.clone(), master, options, clock)
        .await
        .expect("open service");
    (service, store)
}

#[tokio::test]
async fn keys_are_destroyed_when_their_deletion_window_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(AtomicI64::new(1_000_000)));
    let (service, store) = open_service(dir.path(), clock.clone()).await;
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("doomed"));
    service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("create");
    service.rotate_key(&owner, &id).await.expect("rotate");
    let context = Context::new();
    let sealed = service
        .encrypt(&owner, &id, b"bye", &context)
        .await
        .expect("encrypt");
    service
        .schedule_key_deletion(&admin, &id, 7)
        .await
        .expect("schedule");
    clock.0.fetch_add(7 * 86_400 - 1, Ordering::SeqCst);
    assert!(
        service
            .purge_due_deletions()
            .await
            .expect("purge")
            .is_empty()
    );
    assert!(service.get_key(&admin, &id).await.is_ok());
    clock.0.fetch_add(1, Ordering::SeqCst);
    // Past the window the key is gone at once, even before the purge runs.
    assert!(matches!(
        service.get_key(&admin, &id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        service
            .decrypt(&owner, &id, &sealed.ciphertext, &context)
            .await,
        Err(Error::PermissionDenied)
    ));
    assert_eq!(
        service.purge_due_deletions().await.expect("purge"),
        vec![id.clone()]
    );
    assert_eq!(store.key(&id).await.expect("get"), None);
    service.audit_checkpoint().await.expect("checkpoint");
    let audit = std::fs::read_to_string(super::default_audit_file(&dir.path().join("data")))
        .expect("audit file");
    let destroyed = audit
        .lines()
        .find(|line| line.contains("\"operation\":\"key_destroyed\""))
        .expect("the destruction is audited");
    assert!(destroyed.contains("\"key_id\":\"doomed\""), "{destroyed}");
    assert!(destroyed.contains("\"kind\":\"event\""), "{destroyed}");
    for version in 1..=2 {
        let version = KeyVersion::new(version).expect("version");
        assert_eq!(store.version(&id, version).await.expect("version"), None);
    }
    // The id can be reused, and the new key cannot open the old ciphertext.
    service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("recreate");
    assert!(matches!(
        service
            .decrypt(&owner, &id, &sealed.ciphertext, &context)
            .await,
        Err(Error::InvalidCiphertext(_))
    ));
}

#[tokio::test]
async fn an_expired_key_not_yet_purged_does_not_block_reuse_of_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(AtomicI64::new(50)));
    let (service, _store) = open_service(dir.path(), clock.clone()).await;
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("again"));
    service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("create");
    service
        .schedule_key_deletion(&admin, &id, 30)
        .await
        .expect("schedule");
    clock.0.fetch_add(30 * 86_400, Ordering::SeqCst);
    let again = service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("recreate");
    assert_eq!(again.primary_version, KeyVersion::FIRST);
}

#[tokio::test]
async fn seal_drops_the_root_key_and_every_cached_dek() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("sealed"));
    service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("create");
    let context = Context::new();
    let sealed = service
        .encrypt(&owner, &id, b"x", &context)
        .await
        .expect("encrypt");
    let keyring = Arc::downgrade(&service.keyring().expect("unsealed"));
    assert_eq!(keyring.upgrade().map(|k| k.cached_count()), Some(1));
    assert!(matches!(
        service.seal(&owner).await,
        Err(Error::PermissionDenied)
    ));
    service.seal(&admin).await.expect("seal");
    assert!(
        keyring.upgrade().is_none(),
        "no reference to the key material survives seal"
    );
    assert!(*service.watch_sealed().borrow());
    assert!(matches!(
        service
            .decrypt(&owner, &id, &sealed.ciphertext, &context)
            .await,
        Err(Error::Sealed)
    ));
    service.unseal(&admin).await.expect("unseal");
    let opened = service
        .decrypt(&owner, &id, &sealed.ciphertext, &context)
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext.expose(), b"x");
}

#[tokio::test]
async fn a_sealed_keystore_stays_sealed_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = ident(ADMIN);
    {
        let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
        service.seal(&admin).await.expect("seal");
    }
    {
        let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
        assert!(service.is_sealed(), "a restart must not unseal");
        assert!(*service.watch_sealed().borrow());
        service.unseal(&admin).await.expect("unseal");
    }
    let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
    assert!(!service.is_sealed(), "unseal is remembered too");
}

#[derive(Debug, Clone)]
enum Step {
    Encrypt(Vec<u8>, Vec<(String, String)>),
    Rotate,
    ReEncryptOldest,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec((".{0,8}", ".{0,8}"), 0..4),
        )
            .prop_map(|(p, c)| Step::Encrypt(p, c)),
        2 => Just(Step::Rotate),
        1 => Just(Step::ReEncryptOldest),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any sequence of encryptions, rotations and re-encryptions leaves every
    /// ciphertext decrypting to its plaintext under the version it names,
    /// even with a DEK cache smaller than the number of versions.
    #[test]
    fn rotation_sequences_keep_every_ciphertext_decrypting(steps in proptest::collection::vec(step(), 1..24)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let clock = Arc::new(ManualClock(AtomicI64::new(10)));
            let (service, _store) = open_service(dir.path(), clock).await;
            let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("prop"));
            service.create_key(&admin, &id, &owner, "").await.expect("create");
            let mut primary = 1u32;
            let mut made: Vec<(Vec<u8>, Context, Vec<u8>, u32)> = Vec::new();
            for step in steps {
                match step {
                    Step::Encrypt(plaintext, pairs) => {
                        let context: Context = pairs.into_iter().collect();
                        let out = service.encrypt(&owner, &id, &plaintext, &context).await.expect("encrypt");
                        prop_assert_eq!(out.key_version.get(), primary);
                        made.push((plaintext, context, out.ciphertext, primary));
                    }
                    Step::Rotate => {
                        primary = service.rotate_key(&owner, &id).await.expect("rotate").primary_version.get();
                    }
                    Step::ReEncryptOldest => {
                        if let Some((plaintext, context, ciphertext, _)) = made.first().cloned() {
                            let out = service.re_encrypt(&owner, &id, &ciphertext, &context).await.expect("reencrypt");
                            prop_assert_eq!(out.key_version.get(), primary);
                            made.push((plaintext, context, out.ciphertext, primary));
                        }
                    }
                }
            }
            for (plaintext, context, ciphertext, version) in &made {
                let opened = service.decrypt(&owner, &id, ciphertext, context).await.expect("decrypt");
                prop_assert_eq!(opened.plaintext.expose(), plaintext.as_slice());
                prop_assert_eq!(opened.key_version.get(), *version);
            }
            Ok(())
        })?;
    }
}

/// The committed keystore fixture: a sled keystore made by the first release
/// of the format, its master key, and ciphertexts that must decrypt forever.
mod keystore_fixture {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keystore-fixtures/keystore-v1");

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }

    fn parse_line(line: &str) -> (KeyId, Context, Vec<u8>, Vec<u8>, u32) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 5, "fixture line: {line}");
        let context: Context = if fields[1] == "-" {
            Context::new()
        } else {
            fields[1]
                .split(',')
                .map(|pair| pair.split_once('=').expect("k=v"))
                .collect()
        };
        (
            key_id(fields[0]),
            context,
            hex::decode(fields[2]).expect("plaintext hex"),
            hex::decode(fields[3]).expect("ciphertext hex"),
            fields[4].parse().expect("version"),
        )
    }

    #[tokio::test]
    async fn keystore_v1_fixture_decrypts_forever() {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(Path::new(FIXTURE), dir.path());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("master.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("chmod");
        }
        let (service, _store) = open_service(
            dir.path(),
            Arc::new(ManualClock(AtomicI64::new(2_000_000_000))),
        )
        .await;
        let owner = ident(OWNER);
        let lines = std::fs::read_to_string(dir.path().join("ciphertexts.txt")).expect("read");
        let mut checked = 0;
        for line in lines
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (id, context, plaintext, ciphertext, version) = parse_line(line);
            let opened = service
                .decrypt(&owner, &id, &ciphertext, &context)
                .await
                .expect("fixture ciphertext must decrypt");
            assert_eq!(opened.plaintext.expose(), plaintext.as_slice());
            assert_eq!(opened.key_version.get(), version);
            checked += 1;
        }
        assert!(checked >= 6, "fixture holds {checked} ciphertexts");
        // The keystore predates the owner index: opening it built the
        // index, and the owner's listing (read from it) finds every key.
        let fixture_keys: BTreeSet<&str> = lines
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(' ').next())
            .collect();
        let listed = service
            .list_keys(&owner, "", 0, None)
            .await
            .expect("owner lists");
        let listed: BTreeSet<&str> = listed.keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(listed, fixture_keys);
    }

    /// Writes the fixture. Run once, when the format was created:
    /// `cargo test --lib -- --ignored generate_keystore_fixture`. It refuses to
    /// overwrite: the fixture must never change.
    #[tokio::test]
    #[ignore = "generator: the committed fixture must never change"]
    async fn generate_keystore_fixture() {
        let root = Path::new(FIXTURE);
        assert!(
            !root.exists(),
            "{FIXTURE} exists; the fixture must never change"
        );
        std::fs::create_dir_all(root).expect("mkdir");
        let mut lines = vec![
            "# key_id context(k=v,... or -) plaintext_hex ciphertext_hex key_version".to_owned(),
            format!("# owner of every key: {OWNER}; master key: master.key; keystore: data/"),
        ];
        {
            let clock = Arc::new(ManualClock(AtomicI64::new(1_790_000_000)));
            let (service, _store) = open_service(root, clock).await;
            let (admin, owner) = (ident(ADMIN), ident(OWNER));
            for name in ["fixture/a", "fixture/b"] {
                let id = key_id(name);
                service
                    .create_key(&admin, &id, &owner, "fixture")
                    .await
                    .expect("create");
                for version in 1..=3 {
                    for (context, plaintext) in [
                        (vec![], format!("{name} v{version}").into_bytes()),
                        (
                            vec![("tenant", "42"), ("table", "customers")],
                            vec![0u8, 1, 2, 255],
                        ),
                    ] {
                        let ctx: Context = context.iter().copied().collect();
                        let out = service
                            .encrypt(&owner, &id, &plaintext, &ctx)
                            .await
                            .expect("encrypt");
                        let ctx_text = if context.is_empty() {
                            "-".to_owned()
                        } else {
                            context
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        };
                        lines.push(format!(
                            "{name} {ctx_text} {} {} {}",
                            hex::encode(&plaintext),
                            hex::encode(&out.ciphertext),
                            out.key_version
                        ));
                    }
                    if version < 3 {
                        service.rotate_key(&owner, &id).await.expect("rotate");
                    }
                }
            }
        }
        lines.push(String::new());
        std::fs::write(root.join("ciphertexts.txt"), lines.join("\n")).expect("write");
    }
}

/// Waits (bounded) until no root-key rotation is in progress.
async fn wait_for_root_rotation(service: &Service, admin: &Identity) -> super::ServiceStatus {
    for _ in 0..600 {
        let status = service.status(admin).await.expect("status");
        if status.root_rotation.is_none() {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("root-key rotation did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_rotation_rewraps_every_dek_while_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
    let service = Arc::new(service);
    let (admin, owner) = (ident(ADMIN), ident(OWNER));
    let context = Context::new();
    let mut sealed = Vec::new();
    for k in 0..12 {
        let id = key_id(&format!("rot/{k:02}"));
        service
            .create_key(&admin, &id, &owner, "")
            .await
            .expect("create");
        for v in 0..3 {
            let out = service
                .encrypt(&owner, &id, format!("{k}/{v}").as_bytes(), &context)
                .await
                .expect("encrypt");
            sealed.push((id.clone(), format!("{k}/{v}"), out.ciphertext));
            if v < 2 {
                service.rotate_key(&owner, &id).await.expect("rotate");
            }
        }
    }
    assert_eq!(
        service
            .status(&admin)
            .await
            .expect("status")
            .root_generation,
        1
    );
    assert!(matches!(
        service.rotate_root_key(&owner).await,
        Err(Error::PermissionDenied)
    ));
    service.rotate_root_key(&admin).await.expect("rotate root");
    // Serving goes on during the re-wrap: old ciphertexts decrypt, new keys
    // and versions work.
    for (id, plaintext, ciphertext) in &sealed {
        let opened = service
            .decrypt(&owner, id, ciphertext, &context)
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext.expose(), plaintext.as_bytes());
    }
    let fresh = key_id("rot/fresh");
    service
        .create_key(&admin, &fresh, &owner, "")
        .await
        .expect("create during rotation");
    let status = wait_for_root_rotation(&service, &admin).await;
    assert_eq!(status.root_generation, 2);
    let versions = store.versions_after(None, 1000).await.expect("versions");
    assert_eq!(versions.len(), 12 * 3 + 1);
    assert!(
        versions.iter().all(|(_, v)| v.root_generation == 2),
        "every DEK is under the new root key"
    );
    let root = store.root().await.expect("root").expect("root");
    assert!(root.retiring.is_none(), "the previous root key is gone");
    assert_eq!(store.rewrap_cursor().await.expect("cursor"), None);
    for (id, plaintext, ciphertext) in &sealed {
        let opened = service
            .decrypt(&owner, id, ciphertext, &context)
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext.expose(), plaintext.as_bytes());
    }
    // Again, after a restart too.
    service
        .rotate_root_key(&admin)
        .await
        .expect("rotate root again");
    assert_eq!(
        wait_for_root_rotation(&service, &admin)
            .await
            .root_generation,
        3
    );
    drop(service);
    drop(store);
    let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
    for (id, plaintext, ciphertext) in &sealed {
        let opened = service
            .decrypt(&owner, id, ciphertext, &context)
            .await
            .expect("decrypt after restart");
        assert_eq!(opened.plaintext.expose(), plaintext.as_bytes());
    }
}

/// Data-key lookups (cache hits plus misses) so far.
async fn dek_lookups(service: &Service) -> u64 {
    service
        .render_metrics()
        .await
        .lines()
        .filter(|line| {
            line.starts_with("tresor_dek_cache_hits_total ")
                || line.starts_with("tresor_dek_cache_misses_total ")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn item<'a>(id: &KeyId, data: &'a [u8], context: &Context) -> super::BatchInput<'a> {
    Ok(super::BatchItem {
        key_id: id.clone(),
        data,
        context: context.clone(),
    })
}

#[tokio::test]
async fn a_batch_resolves_each_key_once_and_answers_each_item_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
    let (admin, owner, other) = (ident(ADMIN), ident(OWNER), ident("spiffe://unit/other"));
    let (mine, theirs, off) = (key_id("mine"), key_id("theirs"), key_id("off"));
    for (id, by) in [(&mine, &owner), (&theirs, &other), (&off, &owner)] {
        service
            .create_key(&admin, id, by, "")
            .await
            .expect("create");
    }
    service.disable_key(&admin, &off).await.expect("disable");
    let context: Context = [("tenant", "7")].into_iter().collect();
    let huge: Context = [("big", "x".repeat(super::MAX_CONTEXT_BYTES))]
        .into_iter()
        .collect();
    let plaintexts: Vec<Vec<u8>> = (0..40u8).map(|n| vec![n; 64]).collect();

    let before = dek_lookups(&service).await;
    let mut items: Vec<super::BatchInput<'_>> = plaintexts
        .iter()
        .map(|p| item(&mine, p, &context))
        .collect();
    items.push(item(&theirs, b"no", &context));
    items.push(item(&off, b"off", &context));
    items.push(item(&mine, b"big", &huge));
    items.push(Err(Error::InvalidArgument("key_id is empty".into())));
    let results = service
        .encrypt_batch(&owner, items.into_iter())
        .await
        .expect("batch");
    assert_eq!(
        dek_lookups(&service).await - before,
        1,
        "40 items under one key: one DEK lookup"
    );
    assert_eq!(results.len(), 44);
    let sealed: Vec<_> = results[..40]
        .iter()
        .map(|r| r.as_ref().expect("sealed").ciphertext.clone())
        .collect();
    assert!(matches!(results[40], Err(Error::PermissionDenied)));
    assert!(matches!(results[41], Err(Error::FailedPrecondition(_))));
    assert!(matches!(results[42], Err(Error::InvalidArgument(_))));
    assert!(matches!(results[43], Err(Error::InvalidArgument(_))));

    // Rotate: the batch now spans two versions of one key.
    service.rotate_key(&owner, &mine).await.expect("rotate");
    let newer = service
        .encrypt(&owner, &mine, b"v2", &context)
        .await
        .expect("encrypt v2");
    let mut tampered = sealed[0].clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let wrong_context = Context::new();
    let before = dek_lookups(&service).await;
    let mut items: Vec<super::BatchInput<'_>> =
        sealed.iter().map(|c| item(&mine, c, &context)).collect();
    items.push(item(&mine, &newer.ciphertext, &context));
    items.push(item(&mine, &tampered, &context));
    items.push(item(&mine, &sealed[1], &wrong_context));
    let opened = service
        .decrypt_batch(&owner, items.into_iter())
        .await
        .expect("batch");
    assert_eq!(dek_lookups(&service).await - before, 2, "one per version");
    for (n, result) in opened[..40].iter().enumerate() {
        let result = result.as_ref().expect("opens");
        assert_eq!(result.plaintext.expose(), plaintexts[n].as_slice());
        assert_eq!(result.key_version, KeyVersion::FIRST);
    }
    assert_eq!(opened[40].as_ref().expect("v2").key_version.get(), 2);
    assert!(matches!(opened[41], Err(Error::InvalidCiphertext(_))));
    assert!(matches!(opened[42], Err(Error::InvalidCiphertext(_))));

    // Another identity gets the same per-item answers as single calls.
    let single = service
        .decrypt(&other, &mine, &sealed[0], &context)
        .await
        .map(|_| ());
    let batched = service
        .decrypt_batch(&other, std::iter::once(item(&mine, &sealed[0], &context)))
        .await
        .expect("batch");
    assert!(matches!(single, Err(Error::PermissionDenied)));
    assert!(matches!(batched[..], [Err(Error::PermissionDenied)]));
}

#[tokio::test]
async fn a_batch_fails_whole_only_when_sealed_or_too_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, _store) = open_service(dir.path(), Arc::new(ManualClock::default())).await;
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("k"));
    service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("create");
    let context = Context::new();
    let empty = service
        .encrypt_batch(&owner, std::iter::empty())
        .await
        .expect("an empty batch is fine");
    assert!(empty.is_empty());
    let max = crate::service::DEFAULT_MAX_BATCH_ITEMS;
    let too_many = (0..max + 1).map(|_| item(&id, b"x", &context));
    assert!(matches!(
        service.encrypt_batch(&owner, too_many).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        service.admit(&owner, Rpc::DecryptBatch, max + 1).await,
        Err(Error::InvalidArgument(_))
    ));
    service
        .admit(&owner, Rpc::DecryptBatch, max)
        .await
        .expect("at the cap");
    service.seal(&admin).await.expect("seal");
    assert!(matches!(
        service
            .encrypt_batch(&owner, std::iter::once(item(&id, b"x", &context)))
            .await,
        Err(Error::Sealed)
    ));
}

#[tokio::test]
async fn each_decrypt_item_counts_for_the_detector_and_the_metrics() {
    let dir = tempfile::tempdir().expect("dir");
    let (master, store) = master_and_store(dir.path());
    let mut options = options();
    options.guard.anomaly.decrypt_floor = 5;
    let service = Service::open(store, master, options)
        .await
        .expect("open service");
    let mut alerts = service.subscribe_alerts();
    let caller = ident(OWNER);
    let call = |operation: Rpc, items: usize| {
        let record = super::RequestRecord {
            operation,
            request_id: "r".into(),
            identity: Some(caller.clone()),
            peer: None,
            key_id: None,
            resolved_key_id: None,
            allowed_by: None,
            closest_grant: None,
            key_version: None,
            items: Some(items as u32),
            context: None,
            status: "OK",
            latency: std::time::Duration::from_micros(50),
            detail: None,
        };
        let items = (0..items)
            .map(|_| super::ItemRecord {
                key_id: "k".into(),
                resolved_key_id: None,
                key_version: Some(1),
                context: None,
                status: "OK",
            })
            .collect();
        (record, items)
    };
    let (record, items) = call(Rpc::EncryptBatch, 6);
    service.record_request(record, items).await.expect("record");
    assert!(alerts.try_recv().is_err(), "encrypt items are no decrypts");
    let (record, items) = call(Rpc::DecryptBatch, 6);
    service.record_request(record, items).await.expect("record");
    let alert = alerts
        .try_recv()
        .expect("6 decrypt items pass a floor of 5");
    assert_eq!(alert.kind, crate::anomaly::AlertKind::DecryptSpike);
    let metrics = service.render_metrics().await;
    for expected in [
        "tresor_requests_total{operation=\"DecryptBatch\",status=\"OK\"} 1",
        "tresor_batch_items_total{operation=\"DecryptBatch\",status=\"OK\"} 6",
        "tresor_batch_items_total{operation=\"EncryptBatch\",status=\"OK\"} 6",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}
