//! Wrapped data keys have a purpose of their own (issue 18, low item), over
//! real mTLS: a caller allowed only to Encrypt cannot make a "wrapped data
//! key" that a Decrypt holder's `open_stream` accepts, a stream naming a key
//! the opener did not expect is refused before tresor is asked anything,
//! version 1 streams open only on a client that accepts legacy streams, and
//! wrapped keys open with DecryptDataKey (Decrypt grant) and nothing else.

use crate::common;

use std::collections::HashMap;

use common::{ADMIN, BILLING, SHIPPING, TestServer, audit_records, ctx};
use tresor_client::{Client, ClientError, StreamError};
use tresor_crypto::{ChunkSize, Context, SecretKey, StreamParams, StreamSealer, StreamVersion};
use tresor_proto::v1::Operation;

const KEY: &str = "billing/records";
const OTHER_KEY: &str = "shipping/labels";

fn tenant() -> HashMap<String, String> {
    ctx(&[("tenant", "42")])
}

/// A server where BILLING owns [`KEY`] and SHIPPING holds only an Encrypt
/// grant on it; SHIPPING owns [`OTHER_KEY`] and granted BILLING Decrypt on
/// it. Returns the server and the two tenants' SDK clients.
async fn two_tenants() -> (TestServer, Client, Client) {
    let server = TestServer::start().await;
    let admin = server.fixture.sdk_at(server.addr, ADMIN).await;
    admin
        .create_key(KEY, BILLING, "victim")
        .await
        .expect("create key");
    admin
        .create_grant(KEY, SHIPPING, &[Operation::Encrypt])
        .await
        .expect("grant encrypt");
    admin
        .create_key(OTHER_KEY, SHIPPING, "attacker's own")
        .await
        .expect("create key");
    admin
        .create_grant(
            OTHER_KEY,
            BILLING,
            &[Operation::Decrypt, Operation::GenerateDataKey],
        )
        .await
        .expect("grant decrypt");
    let billing = server.fixture.sdk_at(server.addr, BILLING).await;
    let shipping = server.fixture.sdk_at(server.addr, SHIPPING).await;
    (server, billing, shipping)
}

/// A stream of `version` under a data key of the caller's choosing, whose
/// "wrapped key" is `wrapped` (whatever the forger could obtain).
fn stream_with(
    data_key: &[u8; 32],
    key_id: &str,
    wrapped: &[u8],
    context: &HashMap<String, String>,
    version: StreamVersion,
    plaintext: &[u8],
) -> Vec<u8> {
    let key = SecretKey::from_bytes(data_key).expect("32 bytes");
    let context: Context = context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let params = StreamParams {
        key_id,
        wrapped_key: wrapped,
        context: &context,
        chunk_size: ChunkSize::MIN,
    };
    let sealer = StreamSealer::with_version(&key, &params, version).expect("sealer");
    let mut out = sealer.header().to_vec();
    let mut last = plaintext.to_vec();
    sealer.seal_last(&mut last).expect("seal");
    out.extend_from_slice(&last);
    out
}

#[tokio::test]
async fn an_encrypt_only_grantee_cannot_forge_a_stream_the_owner_opens() {
    let (_server, billing, shipping) = two_tenants().await;
    // The forger picks a data key and has tresor "wrap" it with Encrypt,
    // the only thing its grant allows.
    let chosen = [7u8; 32];
    let wrapped = shipping
        .encrypt(KEY, &chosen, &tenant())
        .await
        .expect("encrypt is allowed")
        .ciphertext;
    let forged = stream_with(
        &chosen,
        KEY,
        &wrapped,
        &tenant(),
        StreamVersion::CURRENT,
        b"pay the forger",
    );
    let opened = billing.open_bytes(&[KEY], &forged, &tenant()).await;
    assert!(
        matches!(opened, Err(StreamError::Unauthentic)),
        "a stream around an Encrypt ciphertext must not open: {opened:?}"
    );
    // Labelled version 1, it is refused without asking tresor...
    let legacy = stream_with(
        &chosen,
        KEY,
        &wrapped,
        &tenant(),
        StreamVersion::V1,
        b"pay the forger",
    );
    let opened = billing.open_bytes(&[KEY], &legacy, &tenant()).await;
    assert!(
        matches!(opened, Err(StreamError::LegacyStream)),
        "{opened:?}"
    );
    // ...and DecryptDataKey itself refuses the Encrypt ciphertext.
    let unwrapped = billing.decrypt_data_key(KEY, &wrapped, &tenant()).await;
    assert!(
        matches!(unwrapped, Err(ClientError::InvalidCiphertext)),
        "{unwrapped:?}"
    );
}

#[tokio::test]
async fn a_stream_naming_another_key_is_refused_before_any_call() {
    let (server, billing, shipping) = two_tenants().await;
    // Genuine in every way, but sealed under a key the forger controls
    // (and on which it granted the victim Decrypt).
    let stream = shipping
        .seal_bytes(OTHER_KEY, b"from the other tenant", &tenant())
        .await
        .expect("seal");
    let opened = billing.open_bytes(&[KEY], &stream, &tenant()).await;
    match opened {
        Err(StreamError::UnexpectedKey { found }) => assert_eq!(found, OTHER_KEY),
        other => panic!("expected UnexpectedKey, got {other:?}"),
    }
    // Listing that key opens it: the check is the caller's choice of keys.
    let opened = billing
        .open_bytes(&[KEY, OTHER_KEY], &stream, &tenant())
        .await
        .expect("expected key opens");
    assert_eq!(opened.expose(), b"from the other tenant");

    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    let _fixture = server.stop().await;
    let unwraps = audit_records(&file)
        .iter()
        .filter(|r| r["operation"] == "DecryptDataKey" && r["identity"] == BILLING)
        .count();
    assert_eq!(unwraps, 1, "the refused stream cost no call to tresor");
}

#[tokio::test]
async fn version_1_streams_open_only_when_legacy_streams_are_accepted() {
    let (_server, billing, _shipping) = two_tenants().await;
    // What SDKs wrote before stream version 2: the data key wrapped with
    // an ordinary Encrypt by the owner itself.
    let data_key = [9u8; 32];
    let wrapped = billing
        .encrypt(KEY, &data_key, &tenant())
        .await
        .expect("encrypt")
        .ciphertext;
    let stream = stream_with(
        &data_key,
        KEY,
        &wrapped,
        &tenant(),
        StreamVersion::V1,
        b"written last year",
    );
    let refused = billing.open_bytes(&[KEY], &stream, &tenant()).await;
    assert!(
        matches!(refused, Err(StreamError::LegacyStream)),
        "{refused:?}"
    );
    let legacy = billing.clone().accepting_legacy_streams();
    let opened = legacy
        .open_bytes(&[KEY], &stream, &tenant())
        .await
        .expect("legacy stream opens when accepted");
    assert_eq!(opened.expose(), b"written last year");
    // The expected-key check applies to legacy streams too.
    let refused = legacy.open_bytes(&[OTHER_KEY], &stream, &tenant()).await;
    assert!(
        matches!(refused, Err(StreamError::UnexpectedKey { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn wrapped_data_keys_open_with_decrypt_data_key_and_nothing_else() {
    let (_server, billing, shipping) = two_tenants().await;
    let generated = billing
        .generate_data_key(KEY, &tenant())
        .await
        .expect("generate");
    // Decrypt refuses it, and says what to use.
    let refused = billing
        .decrypt(KEY, &generated.wrapped_key, &tenant())
        .await;
    assert!(
        matches!(refused, Err(ClientError::WrappedDataKey)),
        "{refused:?}"
    );
    let opened = billing
        .decrypt_data_key(KEY, &generated.wrapped_key, &tenant())
        .await
        .expect("DecryptDataKey opens it");
    assert_eq!(opened.plaintext_key, generated.plaintext_key);
    assert_eq!(opened.key_version, generated.key_version);
    // Bound to the context like any ciphertext.
    let wrong = billing
        .decrypt_data_key(KEY, &generated.wrapped_key, &ctx(&[("tenant", "43")]))
        .await;
    assert!(
        matches!(wrong, Err(ClientError::InvalidCiphertext)),
        "{wrong:?}"
    );
    // It needs the Decrypt grant: an Encrypt-only grantee cannot open it.
    let denied = shipping
        .decrypt_data_key(KEY, &generated.wrapped_key, &tenant())
        .await;
    assert!(
        matches!(denied, Err(ClientError::PermissionDenied(_))),
        "{denied:?}"
    );
}

#[tokio::test]
async fn re_encrypt_keeps_a_wrapped_data_key_a_data_key() {
    let (_server, billing, _shipping) = two_tenants().await;
    let generated = billing
        .generate_data_key(KEY, &tenant())
        .await
        .expect("generate");
    billing.rotate_key(KEY).await.expect("rotate");
    let rewrapped = billing
        .re_encrypt(KEY, &generated.wrapped_key, &tenant())
        .await
        .expect("re-encrypt a wrapped key");
    assert_eq!(rewrapped.key_version, 2);
    let opened = billing
        .decrypt_data_key(KEY, &rewrapped.ciphertext, &tenant())
        .await
        .expect("still a data key");
    assert_eq!(opened.plaintext_key, generated.plaintext_key);
    let refused = billing.decrypt(KEY, &rewrapped.ciphertext, &tenant()).await;
    assert!(
        matches!(refused, Err(ClientError::WrappedDataKey)),
        "{refused:?}"
    );
    // And an Encrypt ciphertext re-encrypted stays data: never a data key.
    let data = billing
        .encrypt(KEY, &[1u8; 32], &tenant())
        .await
        .expect("encrypt");
    let rewrapped = billing
        .re_encrypt(KEY, &data.ciphertext, &tenant())
        .await
        .expect("re-encrypt data");
    let refused = billing
        .decrypt_data_key(KEY, &rewrapped.ciphertext, &tenant())
        .await;
    assert!(
        matches!(refused, Err(ClientError::InvalidCiphertext)),
        "{refused:?}"
    );
}
