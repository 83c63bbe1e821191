//! The reference decryptor in `docs/FORMAT.md` (Python, written from the
//! document alone) must open every fixed vector of every format version,
//! and remake the MAC token and deterministic vectors byte for byte.
//! This keeps the byte-by-byte description honest: a change to the format
//! that the document does not describe fails here.
//!
//! Needs `python3` with the `cryptography` package (CI installs it with
//! moto). Outside CI, without them, the test prints why and skips.

use std::process::Command;

const FORMAT_DOC: &str = include_str!("../../docs/FORMAT.md");

/// The Python code block of the appendix.
fn reference_decryptor() -> &'static str {
    let appendix = FORMAT_DOC
        .split_once("## Appendix: independent reference decryptor")
        .expect("FORMAT.md has the appendix")
        .1;
    let code = appendix
        .split_once("```python\n")
        .expect("the appendix holds a python block")
        .1;
    code.split_once("```").expect("the python block ends").0
}

/// Reads a fixture file (grammar in its header) and checks every vector.
const DRIVER: &str = r##"
import sys
def vectors(path):
    vector, ctx = None, None
    for line in open(path, encoding="utf-8").read().split("\n"):
        if line.startswith("#") or not line:
            continue
        name, value = line.split(":", 1)
        value = value[1:] if value.startswith(" ") else value
        if name == "name":
            vector, ctx = {"name": value, "ctx": {}}, None
        elif name == "ctx_key":
            ctx = value
        elif name == "ctx_value":
            vector["ctx"][ctx] = value
        else:
            vector[name] = value
        if name in ("ciphertext", "output"):
            yield vector
count = 0
for path in sys.argv[1:]:
    for v in vectors(path):
        key, key_id, version = bytes.fromhex(v["key"]), v["key_id"], int(v["key_version"])
        if path.endswith("mac-v1.txt"):
            token = mac_token(key, key_id, version, v["ctx"], int(v["length"]),
                              bytes.fromhex(v["input"]))
            assert token == bytes.fromhex(v["output"]), v["name"]
        elif path.endswith("deterministic-v1.txt"):
            sealed = seal_deterministic(key, key_id, version, v["ctx"], bytes.fromhex(v["input"]))
            assert sealed == bytes.fromhex(v["output"]), v["name"]
            opened = open_deterministic(key, key_id, version, v["ctx"], sealed)
            assert opened == bytes.fromhex(v["input"]), v["name"]
        else:
            plaintext = open_ciphertext(key, v["purpose"], key_id, version, v["ctx"],
                                        bytes.fromhex(v["ciphertext"]))
            assert plaintext == bytes.fromhex(v["plaintext"]), v["name"]
        count += 1
print(count)
"##;

#[test]
fn reference_decryptor_opens_every_fixture() {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let reason = "python3 with the cryptography package is not installed \
                      (python3 -m pip install cryptography)";
        assert!(std::env::var_os("CI").is_none(), "{reason}");
        eprintln!("skipping the FORMAT.md reference decryptor: {reason}");
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/keystore-fixtures");
    let program = format!("{}\n{DRIVER}", reference_decryptor());
    let output = Command::new("python3")
        .arg("-c")
        .arg(&program)
        .arg(format!("{dir}/crypto-v1.txt"))
        .arg(format!("{dir}/crypto-v2.txt"))
        .arg(format!("{dir}/mac-v1.txt"))
        .arg(format!("{dir}/deterministic-v1.txt"))
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "the FORMAT.md decryptor failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "24");
}
