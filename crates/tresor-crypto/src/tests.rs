//! Tests of seal/open with real cryptography: round trips, every way a
//! binding can be wrong, tampering, truncation, and property tests.

use proptest::prelude::*;
use ring::aead::{Aad, Nonce};

use super::format::{self, COMMITMENT_LEN, EnvelopeWriter, HEADER_LEN, NONCE, SALT_LEN};
use super::sealing::MessageKeys;
use super::*;
use crate::CryptoError;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).expect("32 bytes")
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    pairs.iter().copied().collect()
}

fn binding(context: &Context) -> Binding<'_> {
    Binding {
        purpose: Purpose::Data,
        key_id: "orders",
        key_version: 3,
        context,
    }
}

#[test]
fn round_trip() {
    let k = key(1);
    let c = ctx(&[("tenant", "acme"), ("table", "invoices")]);
    let b = binding(&c);
    let ct = seal(&k, &b, b"attack at dawn").expect("seal");
    assert_eq!(ct.len(), 14 + CIPHERTEXT_OVERHEAD);
    assert_eq!(ct.capacity(), ct.len(), "seal allocates exactly once");
    assert_eq!(open(&k, &b, &ct).expect("open").expose(), b"attack at dawn");
    let env = Envelope::parse(&ct).expect("parse");
    assert_eq!(env.key_version(), 3);
    assert_eq!(env.format_version(), 2);
    assert_eq!(&ct[..8], &[0x54, 0x52, 0x53, 0x02, 0, 0, 0, 3]);
}

#[test]
fn empty_plaintext_round_trips() {
    let k = key(2);
    let c = Context::new();
    let b = binding(&c);
    let ct = seal(&k, &b, b"").expect("seal");
    assert_eq!(ct.len(), CIPHERTEXT_OVERHEAD);
    assert!(open(&k, &b, &ct).expect("open").is_empty());
}

#[test]
fn sealing_is_randomized() {
    let k = key(3);
    let c = Context::new();
    let b = binding(&c);
    let a1 = seal(&k, &b, b"same").expect("seal");
    let a2 = seal(&k, &b, b"same").expect("seal");
    assert_ne!(a1, a2);
    assert_ne!(a1[8..40], a2[8..40], "salts differ");
    assert_ne!(a1[HEADER_LEN..], a2[HEADER_LEN..], "bodies differ");
}

#[test]
fn every_wrong_binding_is_unauthentic() {
    let k = key(4);
    let c = ctx(&[("tenant", "acme")]);
    let b = binding(&c);
    let ct = seal(&k, &b, b"secret").expect("seal");
    assert!(open(&k, &b, &ct).is_ok());

    let other_ctx = ctx(&[("tenant", "evil")]);
    let extra_ctx = ctx(&[("tenant", "acme"), ("x", "")]);
    let empty_ctx = Context::new();
    let wrong: Vec<(&str, Binding<'_>)> = vec![
        (
            "key id",
            Binding {
                key_id: "orders2",
                ..b
            },
        ),
        ("empty key id", Binding { key_id: "", ..b }),
        (
            "version",
            Binding {
                key_version: 4,
                ..b
            },
        ),
        (
            "context value",
            Binding {
                context: &other_ctx,
                ..b
            },
        ),
        (
            "extra context pair",
            Binding {
                context: &extra_ctx,
                ..b
            },
        ),
        (
            "empty context",
            Binding {
                context: &empty_ctx,
                ..b
            },
        ),
        (
            "purpose wrap dek",
            Binding {
                purpose: Purpose::WrapDataKey,
                ..b
            },
        ),
        (
            "purpose wrap root",
            Binding {
                purpose: Purpose::WrapRootKey,
                ..b
            },
        ),
    ];
    for (what, wrong) in wrong {
        assert_eq!(
            open(&k, &wrong, &ct).err(),
            Some(CryptoError::Unauthentic),
            "{what}"
        );
    }
    assert_eq!(
        open(&key(5), &b, &ct).err(),
        Some(CryptoError::Unauthentic),
        "key"
    );
}

#[test]
fn purposes_are_domain_separated_in_every_direction() {
    let k = key(6);
    let c = Context::new();
    let purposes = Purpose::ALL;
    for sealed_as in purposes {
        let b = Binding {
            purpose: sealed_as,
            ..binding(&c)
        };
        let ct = seal(&k, &b, &[9u8; 32]).expect("seal");
        for opened_as in purposes {
            let result = open(
                &k,
                &Binding {
                    purpose: opened_as,
                    ..b
                },
                &ct,
            );
            assert_eq!(
                result.is_ok(),
                sealed_as == opened_as,
                "{sealed_as:?} as {opened_as:?}"
            );
        }
    }
}

#[test]
fn context_order_does_not_matter() {
    let k = key(7);
    let mut c1 = Context::new();
    c1.insert("a", "1");
    c1.insert("b", "2");
    c1.insert("ünï", "🔐");
    let mut c2 = Context::new();
    c2.insert("ünï", "🔐");
    c2.insert("b", "2");
    c2.insert("a", "1");
    let ct = seal(&k, &binding(&c1), b"x").expect("seal");
    assert_eq!(open(&k, &binding(&c2), &ct).expect("open").expose(), b"x");
}

#[test]
fn key_version_zero_only_for_root_key_wrapping() {
    let k = key(8);
    let c = Context::new();
    for purpose in [Purpose::Data, Purpose::DataKey, Purpose::WrapDataKey] {
        let b = Binding {
            purpose,
            key_version: 0,
            ..binding(&c)
        };
        assert_eq!(seal(&k, &b, b"x").err(), Some(CryptoError::Malformed));
    }
    let b = Binding {
        purpose: Purpose::WrapRootKey,
        key_version: 0,
        ..binding(&c)
    };
    let ct = seal(&k, &b, b"root").expect("seal");
    assert_eq!(Envelope::parse(&ct).expect("parse").key_version(), 0);
    assert_eq!(open(&k, &b, &ct).expect("open").expose(), b"root");
    let max = Binding {
        key_version: u32::MAX,
        ..binding(&c)
    };
    let ct = seal(&k, &max, b"max").expect("seal");
    assert_eq!(open(&k, &max, &ct).expect("open").expose(), b"max");
}

#[test]
fn version_in_header_must_match_binding() {
    // Build a Data ciphertext whose header claims version 0 by editing a
    // valid one: open must refuse it before any other check.
    let k = key(9);
    let c = Context::new();
    let b = binding(&c);
    let mut ct = seal(&k, &b, b"x").expect("seal");
    ct[4..8].copy_from_slice(&0u32.to_be_bytes());
    let claimed = Binding {
        key_version: 0,
        ..b
    };
    assert_eq!(
        open(&k, &claimed, &ct).err(),
        Some(CryptoError::Unauthentic)
    );
    assert_eq!(open(&k, &b, &ct).err(), Some(CryptoError::Unauthentic));
}

#[test]
fn malformed_versus_unauthentic() {
    let k = key(10);
    let c = Context::new();
    let b = binding(&c);
    let ct = seal(&k, &b, b"hello").expect("seal");
    let mut bad_magic = ct.clone();
    bad_magic[0] ^= 1;
    assert_eq!(open(&k, &b, &bad_magic).err(), Some(CryptoError::Malformed));
    let mut v3 = ct.clone();
    v3[3] = 3;
    assert_eq!(open(&k, &b, &v3).err(), Some(CryptoError::Malformed));
    // A v2 ciphertext relabelled v1 parses, but the v1 key schedule derives
    // another commitment.
    let mut as_v1 = ct.clone();
    as_v1[3] = 1;
    assert_eq!(open(&k, &b, &as_v1).err(), Some(CryptoError::Unauthentic));
    assert_eq!(
        open(&k, &b, &ct[..CIPHERTEXT_OVERHEAD - 1]).err(),
        Some(CryptoError::Malformed)
    );
    assert_eq!(open(&k, &b, &[]).err(), Some(CryptoError::Malformed));
    let mut longer = ct.clone();
    longer.push(0);
    assert_eq!(open(&k, &b, &longer).err(), Some(CryptoError::Unauthentic));
    assert_eq!(
        open(&k, &b, &ct[..ct.len() - 1]).err(),
        Some(CryptoError::Unauthentic)
    );
}

#[test]
fn flipping_a_commitment_byte_fails() {
    let k = key(11);
    let c = Context::new();
    let b = binding(&c);
    let ct = seal(&k, &b, b"committed").expect("seal");
    for i in 40..72 {
        let mut bad = ct.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            open(&k, &b, &bad).err(),
            Some(CryptoError::Unauthentic),
            "byte {i}"
        );
    }
}

/// GCM alone would accept this ciphertext: it is encrypted and tagged
/// correctly under the right message key, with the (wrong) commitment in the
/// authenticated header. Only the commitment check can reject it, so this
/// test fails if `open` ever stops checking the commitment.
#[test]
fn commitment_is_checked_independently_of_gcm() {
    let k = key(12);
    let c = ctx(&[("tenant", "acme")]);
    let b = binding(&c);
    let prefix = format::header_prefix(format::CURRENT_FORMAT_VERSION, b.key_version);
    let salt = [0x5A; SALT_LEN];
    let keys = MessageKeys::derive(&k, b.purpose, &prefix, &salt, b.key_id, &c).expect("derive");

    let forge = |commitment: &[u8; COMMITMENT_LEN]| {
        let mut writer =
            EnvelopeWriter::new(&prefix, &salt, commitment, b"payload").expect("writer");
        let (header, body) = writer.header_and_body();
        let tag = keys
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(header),
                body,
            )
            .expect("gcm");
        writer.finish(&tag)
    };

    // Sanity: with the right commitment the hand-built ciphertext opens, so
    // the construction above matches `seal`.
    let good = forge(&keys.commitment);
    assert_eq!(open(&k, &b, &good).expect("open").expose(), b"payload");

    let mut wrong_commitment = keys.commitment;
    wrong_commitment[0] ^= 1;
    let forged = forge(&wrong_commitment);
    assert_eq!(open(&k, &b, &forged).err(), Some(CryptoError::Unauthentic));
}

#[test]
fn commitment_depends_on_key_and_binding() {
    let c = Context::new();
    let prefix = format::header_prefix(format::CURRENT_FORMAT_VERSION, 1);
    let salt = [1u8; SALT_LEN];

    let commit = |k: &SecretKey, purpose, key_id| {
        MessageKeys::derive(k, purpose, &prefix, &salt, key_id, &c)
            .expect("derive")
            .commitment
    };
    let base = commit(&key(1), Purpose::Data, "k");
    assert_ne!(base, commit(&key(2), Purpose::Data, "k"));
    assert_ne!(base, commit(&key(1), Purpose::WrapDataKey, "k"));
    assert_ne!(base, commit(&key(1), Purpose::DataKey, "k"));
    assert_ne!(base, commit(&key(1), Purpose::Data, "k2"));
    assert_eq!(base, commit(&key(1), Purpose::Data, "k"));
}

#[test]
fn every_truncation_fails_cleanly() {
    let k = key(13);
    let c = ctx(&[("a", "b")]);
    let b = binding(&c);
    let ct = seal(&k, &b, &[0xEE; 40]).expect("seal");
    for len in 0..ct.len() {
        let err = open(&k, &b, &ct[..len]).expect_err("truncated");
        let expected = if len < CIPHERTEXT_OVERHEAD {
            CryptoError::Malformed
        } else {
            CryptoError::Unauthentic
        };
        assert_eq!(err, expected, "len {len}");
    }
}

fn purpose_strategy() -> impl Strategy<Value = Purpose> {
    prop_oneof![
        Just(Purpose::Data),
        Just(Purpose::WrapDataKey),
        Just(Purpose::WrapRootKey),
        Just(Purpose::DataKey),
    ]
}

fn context_strategy() -> impl Strategy<Value = Context> {
    proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #[test]
    fn prop_round_trip(
        raw_key in any::<[u8; 32]>(),
        purpose in purpose_strategy(),
        key_id in any::<String>(),
        key_version in 1u32..,
        context in context_strategy(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let k = SecretKey::from_bytes(&raw_key).expect("32 bytes");
        let b = Binding { purpose, key_id: &key_id, key_version, context: &context };
        let ct = seal(&k, &b, &plaintext).expect("seal");
        prop_assert_eq!(ct.len(), plaintext.len() + CIPHERTEXT_OVERHEAD);
        prop_assert_eq!(Envelope::parse(&ct).expect("parse").key_version(), key_version);
        let opened = open(&k, &b, &ct).expect("open");
        prop_assert_eq!(opened.expose(), &plaintext[..]);

        // The same pairs inserted in reverse order open too.
        let mut pairs: Vec<(&str, &str)> = context.iter().collect();
        pairs.reverse();
        let reversed: Context = pairs.into_iter().collect();
        let b2 = Binding { context: &reversed, ..b };
        prop_assert!(open(&k, &b2, &ct).is_ok());
    }

    #[test]
    fn prop_any_single_byte_change_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        position in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let k = key(20);
        let c = ctx(&[("tenant", "acme")]);
        let b = binding(&c);
        let mut ct = seal(&k, &b, &plaintext).expect("seal");
        let i = position.index(ct.len());
        ct[i] ^= xor;
        let err = open(&k, &b, &ct).expect_err("tampered ciphertext must not open");
        prop_assert!(matches!(err, CryptoError::Malformed | CryptoError::Unauthentic));
        if i >= 4 {
            // Only magic and format version are structural.
            prop_assert_eq!(err, CryptoError::Unauthentic);
        }
    }

    #[test]
    fn prop_truncation_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
    ) {
        let k = key(21);
        let c = Context::new();
        let b = binding(&c);
        let ct = seal(&k, &b, &plaintext).expect("seal");
        let len = cut.index(ct.len());
        let err = open(&k, &b, &ct[..len]).expect_err("truncated ciphertext must not open");
        prop_assert!(matches!(err, CryptoError::Malformed | CryptoError::Unauthentic));
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        with_magic in any::<bool>(),
        format_version in 1u8..=2,
        raw_key in any::<[u8; 32]>(),
    ) {
        let mut bytes = bytes;
        if with_magic {
            // Get past the magic check to exercise the deeper paths.
            bytes.splice(0..bytes.len().min(4), [b'T', b'R', b'S', format_version]);
        }
        let parsed = Envelope::parse(&bytes);
        if let Ok(env) = &parsed {
            prop_assert!(bytes.len() >= CIPHERTEXT_OVERHEAD);
            prop_assert_eq!(env.format_version(), format_version);
        }
        let k = SecretKey::from_bytes(&raw_key).expect("32 bytes");
        let c = Context::new();
        let version = parsed.map_or(1, |env| env.key_version());
        for purpose in Purpose::ALL {
            let b = Binding { purpose, key_id: "k", key_version: version, context: &c };
            let err = open(&k, &b, &bytes).expect_err("random bytes must not open");
            prop_assert!(matches!(err, CryptoError::Malformed | CryptoError::Unauthentic));
        }
    }
}
