//! What `tresor encrypt|decrypt --out FILE` leaves on disk (issue 18): the
//! plaintext goes to a file of mode 0600 that replaces FILE whole, never
//! through a symlink planted at FILE, never readable by other users.

#![cfg(unix)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::cli::server_with_billing_key;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypt_out_writes_a_private_file_and_never_follows_a_symlink() {
    let (_server, dir, _admin, billing) = server_with_billing_key("billing/records").await;
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(dir.path().join("plain.txt"), b"card 4111").expect("write");
    let encrypt = ["encrypt", "billing/records", "--in", &p("plain.txt")];
    billing.ok(&[&encrypt[..], &["--out", &p("sealed.bin")]].concat());
    let decrypt = ["decrypt", "billing/records", "--in", &p("sealed.bin")];

    // A new file: 0600 whatever the umask allows.
    billing.ok(&[&decrypt[..], &["--out", &p("opened.txt")]].concat());
    assert_eq!(std::fs::read(p("opened.txt")).expect("read"), b"card 4111");
    assert_eq!(mode(Path::new(&p("opened.txt"))), 0o600);

    // An existing world-readable file is replaced by a private one.
    std::fs::write(p("old.txt"), b"old").expect("write");
    std::fs::set_permissions(p("old.txt"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    billing.ok(&[&decrypt[..], &["--out", &p("old.txt")]].concat());
    assert_eq!(std::fs::read(p("old.txt")).expect("read"), b"card 4111");
    assert_eq!(mode(Path::new(&p("old.txt"))), 0o600);

    // A symlink planted at the output path is replaced, and the file it
    // points to (here another user's readable file) is left alone.
    std::fs::write(p("victim.txt"), b"untouched").expect("write");
    std::os::unix::fs::symlink(p("victim.txt"), p("link.txt")).expect("symlink");
    billing.ok(&[&decrypt[..], &["--out", &p("link.txt")]].concat());
    assert_eq!(std::fs::read(p("victim.txt")).expect("read"), b"untouched");
    assert!(
        !std::fs::symlink_metadata(p("link.txt"))
            .expect("metadata")
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(p("link.txt")).expect("read"), b"card 4111");
    assert_eq!(mode(Path::new(&p("link.txt"))), 0o600);

    // The JSON document (base64 plaintext) goes the same way.
    billing.ok(&[
        &["--output", "json"][..],
        &decrypt,
        &["--out", &p("opened.json")],
    ]
    .concat());
    assert_eq!(mode(Path::new(&p("opened.json"))), 0o600);
}
