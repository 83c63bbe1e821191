//! The whole in-process encrypt path (per-message key derivation,
//! commitment, AES-256-GCM, header) beside raw ring AES-256-GCM sealing of
//! the same bytes, at 1 KiB and 64 KiB; and the decrypt path. Run with
//! `cargo bench --bench seal`; compare the two lines of one size within one
//! run (issue 7 targets: at least 25% of raw at 1 KiB, 85% at 64 KiB).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use tresor_crypto::{self as crypto, Binding, Context, Purpose, SecretKey};

const SIZES: [usize; 2] = [1024, 64 * 1024];

fn binding(context: &Context) -> Binding<'_> {
    Binding {
        purpose: Purpose::Data,
        key_id: "billing/records",
        key_version: 3,
        context,
    }
}

fn seal_paths(c: &mut Criterion) {
    let key = SecretKey::generate().expect("key");
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).expect("ring key"));
    let mut context = Context::new();
    context.insert("tenant", "42");
    let mut group = c.benchmark_group("seal");
    for size in SIZES {
        let plaintext = vec![0x5a_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("raw ring AES-256-GCM", size),
            &plaintext,
            |b, p| {
                let mut buffer = Vec::with_capacity(size + 16);
                let mut counter = 0u64;
                b.iter(|| {
                    buffer.clear();
                    buffer.extend_from_slice(p);
                    counter += 1;
                    let mut nonce = [0u8; 12];
                    nonce[..8].copy_from_slice(&counter.to_le_bytes());
                    raw.seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        &mut buffer,
                    )
                    .expect("seal");
                    black_box(&buffer);
                });
            },
        );
        group.bench_with_input(BenchmarkId::new("tresor seal", size), &plaintext, |b, p| {
            b.iter(|| black_box(crypto::seal(&key, &binding(&context), p).expect("seal")));
        });
        let sealed = crypto::seal(&key, &binding(&context), &plaintext).expect("seal");
        group.bench_with_input(BenchmarkId::new("tresor open", size), &sealed, |b, s| {
            b.iter(|| black_box(crypto::open(&key, &binding(&context), s).expect("open")));
        });
    }
    group.finish();
}

criterion_group!(benches, seal_paths);
criterion_main!(benches);
