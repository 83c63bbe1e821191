//! Salts stay unique across a real `fork` without exec (issue 18, item 7).
//!
//! An application that forks with a data key cached must not get the same
//! salt in parent and child: same message key, GCM key-stream reuse and
//! forgeries. Each test seeds the calling thread's salt generator first,
//! then forks (`tresor-test-fork`, a real fork(2) that copies the
//! generator), and seals the same plaintext under the same key in both
//! processes. Before the fix both sides produced byte-identical output.

use tresor_crypto::{
    Binding, ChunkSize, Context, Purpose, SecretKey, StreamHeader, StreamParams, StreamSealer, seal,
};
use tresor_test_fork::in_forked_child;

const KEY_ID: &str = "billing/records";
const PLAINTEXT: &[u8] = b"the same message in parent and child";

fn data_key() -> SecretKey {
    SecretKey::from_bytes(&[7u8; 32]).expect("key")
}

fn seal_message(key: &SecretKey, context: &Context) -> Vec<u8> {
    let binding = Binding {
        purpose: Purpose::Data,
        key_id: KEY_ID,
        key_version: 1,
        context,
    };
    seal(key, &binding, PLAINTEXT).expect("seal")
}

fn stream_header(key: &SecretKey, context: &Context) -> Vec<u8> {
    let params = StreamParams {
        key_id: KEY_ID,
        wrapped_key: b"wrapped data key",
        context,
        chunk_size: ChunkSize::default(),
    };
    StreamSealer::new(key, &params)
        .expect("stream sealer")
        .header()
        .to_vec()
}

#[test]
fn a_forked_child_seals_with_other_salts_than_its_parent() {
    let key = data_key();
    let context = Context::new();
    // Seeds this thread's generator before the fork.
    let before = seal_message(&key, &context);

    let child = in_forked_child(|| seal_message(&key, &context)).expect("fork");
    let parent = seal_message(&key, &context);

    // Same key, binding and plaintext: the ciphertexts are equal exactly
    // when the salts are.
    assert_ne!(before, parent);
    assert_ne!(
        child, parent,
        "parent and child drew the same salt after fork"
    );
}

#[test]
fn a_forked_child_starts_streams_with_other_salts_than_its_parent() {
    let key = data_key();
    let context = Context::new();
    // Draws from this thread's generator before the fork, as a process
    // that sealed messages or streams before forking has.
    seal_message(&key, &context);
    stream_header(&key, &context);

    let child = in_forked_child(|| stream_header(&key, &context)).expect("fork");
    let parent = stream_header(&key, &context);

    StreamHeader::parse(&child).expect("child's header parses");
    assert_ne!(
        child, parent,
        "parent and child started streams with the same salt after fork"
    );
}
