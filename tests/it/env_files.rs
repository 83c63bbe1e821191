//! Secrets in environment variables (issue 23): `tresor env
//! encrypt|decrypt|set|rotate|edit` and `tresor exec`, run as the real CLI
//! binary against the real server over mTLS.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common;

use common::cli::{Tresor, server_with_billing_key, text};
use common::{SHIPPING, found_in_files};
use sha2::Digest;

const KEY: &str = "app/env";

/// Comments, blank lines, `export`, quotes, escapes, multi-line, empty
/// and Unicode values, a `$` kept literal in single quotes.
const DOTENV: &str = "# The app's settings\n\nexport DB_USER=app\nDB_PASS='s3cr3t-$alpha \"quoted\"'\nNOTE=\"it's \\\"here\\\"\\nsecond line\"\n\n# a multi-line key\nPEM=\"-----BEGIN-----\nMIIBpemBodyLine\n-----END-----\"\nEMPTY=\nGREETING='grüße ✓ 秘密'\nPORT=8080 # not secret, encrypted anyway\n";

/// The values a dotenv reader gets from `text`.
fn dotenv_values(text: &str) -> Vec<(String, String)> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| item.expect("a dotenv line"))
        .collect()
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A server with KEY for BILLING, the CLI as BILLING, and DOTENV
/// encrypted under context env=prod into `.env.tresor`.
async fn encrypted() -> (
    common::TestServer,
    tempfile::TempDir,
    Tresor,
    Tresor,
    PathBuf,
) {
    let (server, dir, admin, billing) = server_with_billing_key(KEY).await;
    let plain = write(dir.path(), ".env", DOTENV);
    let sealed = dir.path().join(".env.tresor");
    let said = billing.ok(&[
        "env",
        "encrypt",
        KEY,
        "--context",
        "env=prod",
        "--in",
        &p(&plain),
        "--out",
        &p(&sealed),
    ]);
    assert!(said.contains("encrypted 7 value(s)"), "{said}");
    (server, dir, admin, billing, sealed)
}

fn line_of<'a>(file: &'a str, name: &str) -> &'a str {
    file.lines()
        .find(|line| {
            line.starts_with(&format!("{name}=")) || line.starts_with(&format!("export {name}="))
        })
        .unwrap_or_else(|| panic!("no {name} in\n{file}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_file_round_trips_byte_exact_and_keeps_its_layout() {
    let (_server, dir, admin, billing, sealed) = encrypted().await;
    let encrypted = std::fs::read_to_string(&sealed).expect("read");
    assert!(
        encrypted.starts_with(
            "# tresor-env v1 {\"key_id\":\"app/env\",\"context\":{\"env\":\"prod\"}}\n"
        )
    );
    for kept in [
        "# The app's settings\n\n",
        "\n# a multi-line key\n",
        "export DB_USER=tresor:v1:",
        "PORT=tresor:v1:",
    ] {
        assert!(encrypted.contains(kept), "{kept:?} in\n{encrypted}");
    }
    assert!(encrypted.contains(" # not secret, encrypted anyway\n"));
    for secret in [
        "s3cr3t",
        "second line",
        "MIIBpemBodyLine",
        "grüße",
        "8080 #",
    ] {
        assert!(!encrypted.contains(secret), "{secret} in clear");
    }
    let names: Vec<String> = dotenv_values(&encrypted)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let original = dotenv_values(DOTENV);
    assert_eq!(
        names,
        original.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        "order kept"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&sealed).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let decrypted = billing.ok(&["env", "decrypt", "--in", &p(&sealed)]);
    assert_eq!(
        dotenv_values(&decrypted),
        original,
        "byte-exact values:\n{decrypted}"
    );
    assert!(
        decrypted.starts_with("# The app's settings\n\n"),
        "{decrypted}"
    );

    let out = dir.path().join("plain.env");
    billing.ok(&["env", "decrypt", "--in", &p(&sealed), "--out", &p(&out)]);
    let written = std::fs::read_to_string(&out).expect("read");
    assert_eq!(dotenv_values(&written), original);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&out).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // --out never writes through a symlink: it replaces the link.
    let target = write(dir.path(), "elsewhere", "untouched\n");
    let link = dir.path().join("link.env");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    billing.ok(&["env", "decrypt", "--in", &p(&sealed), "--out", &p(&link)]);
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "untouched\n"
    );
    let link_meta = std::fs::symlink_metadata(&link).expect("meta");
    assert!(link_meta.is_file(), "the link was replaced by a file");
    assert_eq!(
        dotenv_values(&std::fs::read_to_string(&link).expect("read")),
        original
    );

    // Not into a file through stdout.
    let redirected = std::fs::File::create(dir.path().join("redirected.env")).expect("file");
    let output = billing
        .command(&["env", "decrypt", "--in", &p(&sealed)])
        .stdout(Stdio::from(redirected))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("pass --out FILE"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("redirected.env")).expect("read"),
        b""
    );

    // A deterministic key would show which values are equal: refused.
    admin.ok(&[
        "key",
        "create",
        "app/det",
        "--owner",
        common::BILLING,
        "--purpose",
        "deterministic",
    ]);
    let refused = billing.fails(
        &[
            "env",
            "encrypt",
            "app/det",
            "--in",
            &p(&dir.path().join(".env")),
            "--out",
            &p(&dir.path().join("det")),
        ],
        1,
    );
    assert!(refused.contains("deterministic key"), "{refused}");
    assert!(!dir.path().join("det").exists());

    // A value a dotenv reader would substitute is refused, by name.
    let dollar = write(dir.path(), "dollar.env", "OK=1\nBAD=pa$word\n");
    let refused = billing.fails(
        &[
            "env",
            "encrypt",
            KEY,
            "--in",
            &p(&dollar),
            "--out",
            &p(&dir.path().join("x")),
        ],
        1,
    );
    assert!(
        refused.contains("BAD") && refused.contains("single quotes"),
        "{refused}"
    );
    assert!(!refused.contains("pa$word"));
}

/// `tresor exec` as BILLING with `sealed`, the child running `script`.
fn exec(billing: &Tresor, sealed: &Path, script: &str) -> std::process::Command {
    let mut command =
        billing.command(&["exec", "--env-file", &p(sealed), "--", "sh", "-c", script]);
    if let Some(dir) = sealed.parent() {
        command.current_dir(dir.join("work"));
    }
    command
}

/// The lines that differ between two versions of a file (same length).
fn changed_lines<'a>(before: &'a str, after: &'a str) -> Vec<(&'a str, &'a str)> {
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_gives_the_child_its_secrets_and_passes_its_exit_status_and_signals() {
    let (_server, dir, _admin, billing, sealed) = encrypted().await;
    // tresor runs in a folder of its own, with a temp dir of its own:
    // neither may ever hold a plaintext.
    let (work, tmp) = (dir.path().join("work"), dir.path().join("tmp"));
    std::fs::create_dir(&work).expect("work");
    std::fs::create_dir(&tmp).expect("tmp");
    let billing = billing.with("TMPDIR", &p(&tmp));
    // A value from the inherited environment (context from --context).
    let plain = write(dir.path(), "token.env", "API_TOKEN='tok-Ωmega'\n");
    let token_file = dir.path().join("token.env.tresor");
    billing.ok(&[
        "env",
        "encrypt",
        KEY,
        "--context",
        "from=ci",
        "--in",
        &p(&plain),
        "--out",
        &p(&token_file),
    ]);
    let token_line = std::fs::read_to_string(&token_file).expect("read");
    let token_value = line_of(&token_line, "API_TOKEN")
        .trim_start_matches("API_TOKEN=")
        .to_owned();

    let script = "printf '%s|%s|%s|%s|%s' \"$DB_PASS\" \"$NOTE\" \"$PEM\" \"$GREETING\" \"$API_TOKEN\" | sha256sum";
    let output = billing
        .command(&[
            "exec",
            "--env-file",
            &p(&sealed),
            "--context",
            "from=ci",
            "--",
            "sh",
            "-c",
            script,
        ])
        .current_dir(&work)
        .env("API_TOKEN", &token_value)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let expected = sha256_hex(
        "s3cr3t-$alpha \"quoted\"|it's \"here\"\nsecond line|-----BEGIN-----\nMIIBpemBodyLine\n-----END-----|grüße ✓ 秘密|tok-Ωmega".as_bytes(),
    );
    assert_eq!(
        text(&output.stdout).split_whitespace().next(),
        Some(expected.as_str())
    );
    assert!(
        output.stderr.is_empty(),
        "tresor says nothing: {}",
        text(&output.stderr)
    );

    // The exit status and a signal are the child's own.
    let status = exec(&billing, &sealed, "exit 7").status().expect("run");
    assert_eq!(status.code(), Some(7));
    let status = exec(&billing, &sealed, "kill -TERM $$")
        .status()
        .expect("run");
    assert_eq!(status.signal(), Some(15), "{status:?}");

    // The command line shows no secret; the environment has it.
    let mut child = exec(&billing, &sealed, "exec sleep 30")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
    let environ = common::eventually("the command to run", || {
        let proc_dir = proc_dir.clone();
        async move {
            let cmdline = std::fs::read(proc_dir.join("cmdline")).ok()?;
            cmdline.starts_with(b"sleep").then(|| {
                assert!(!cmdline.windows(6).any(|w| w == b"s3cr3t"));
                std::fs::read(proc_dir.join("environ")).expect("environ")
            })
        }
    })
    .await;
    assert!(
        environ.windows(6).any(|w| w == b"s3cr3t"),
        "the child has the value"
    );
    child.kill().expect("kill");
    child.wait().expect("wait");

    for secret in ["s3cr3t", "second line", "tok-Ωmega"] {
        assert!(
            !found_in_files(&work, secret.as_bytes()),
            "{secret} on disk in the working dir"
        );
        assert!(
            !found_in_files(&tmp, secret.as_bytes()),
            "{secret} in the temp dir"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_does_not_open_stops_everything_and_names_its_variable() {
    let (server, dir, admin, billing, sealed) = encrypted().await;
    let file = std::fs::read_to_string(&sealed).expect("read");
    let marker = dir.path().join("ran");
    let run_refused = |path: &Path, as_who: &Tresor| {
        let output = as_who
            .command(&["exec", "--env-file", &p(path), "--", "touch", &p(&marker)])
            .output()
            .expect("run");
        assert!(!output.status.success());
        assert!(!marker.exists(), "the command must not run");
        let stderr = text(&output.stderr);
        assert!(
            !stderr.contains("s3cr3t") && !stderr.contains("app "),
            "{stderr}"
        );
        stderr
    };

    // Two values swapped between names.
    let (user, pass) = (line_of(&file, "DB_USER"), line_of(&file, "DB_PASS"));
    let user_value = user.split_once('=').expect("=").1;
    let pass_value = pass.split_once('=').expect("=").1;
    let swapped = file
        .replace(user, &format!("export DB_USER={pass_value}"))
        .replace(pass, &format!("DB_PASS={user_value}"));
    let stderr = run_refused(&write(dir.path(), "swapped", &swapped), &billing);
    assert!(
        stderr.contains("DB_USER: does not decrypt")
            && stderr.contains("DB_PASS: does not decrypt"),
        "{stderr}"
    );

    // A value from a file of another context.
    let staging = dir.path().join("staging.env.tresor");
    billing.ok(&[
        "env",
        "encrypt",
        KEY,
        "--context",
        "env=staging",
        "--in",
        &p(&dir.path().join(".env")),
        "--out",
        &p(&staging),
    ]);
    let staging_text = std::fs::read_to_string(&staging).expect("read");
    let moved = file.replace(line_of(&file, "PORT"), line_of(&staging_text, "PORT"));
    let stderr = run_refused(&write(dir.path(), "moved", &moved), &billing);
    assert!(stderr.contains("PORT: does not decrypt"), "{stderr}");

    // A tampered value: one character of its ciphertext changed.
    let greeting = line_of(&file, "GREETING");
    let mut bytes = greeting.as_bytes().to_vec();
    let at = bytes.len() - 5;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = file.replace(greeting, &String::from_utf8(bytes).expect("utf8"));
    let stderr = run_refused(&write(dir.path(), "tampered", &tampered), &billing);
    assert!(stderr.contains("GREETING: does not decrypt"), "{stderr}");

    // An identity without a grant.
    let shipping = Tresor::new(&server, SHIPPING, dir.path());
    let stderr = run_refused(&sealed, &shipping);
    assert!(
        stderr.contains("DB_PASS: this identity may not use key app/env"),
        "{stderr}"
    );

    // A disabled key.
    admin.ok(&["key", "disable", KEY, "--yes"]);
    let stderr = run_refused(&sealed, &billing);
    assert!(stderr.contains("NOTE: key app/env is disabled"), "{stderr}");
    admin.ok(&["key", "enable", KEY]);

    // An unreachable server (after the SDK's retries): exit 3, names given.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let offline = billing
        .clone()
        .with("TRESOR_ADDR", &format!("https://localhost:{port}"));
    let output = offline
        .command(&[
            "exec",
            "--env-file",
            &p(&sealed),
            "--",
            "touch",
            &p(&marker),
        ])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_rotate_change_only_their_lines() {
    let (_server, _dir, admin, billing, sealed) = encrypted().await;
    let before = std::fs::read_to_string(&sealed).expect("read");
    let said = billing.run_with_stdin(
        &["env", "set", "DB_PASS", "--in", &p(&sealed)],
        b"n3w-pass\n",
    );
    assert!(said.status.success(), "{}", text(&said.stderr));
    let after = std::fs::read_to_string(&sealed).expect("read");
    let changed = changed_lines(&before, &after);
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with("DB_PASS="));
    let added = billing.run_with_stdin(&["env", "set", "NEW_ONE", "--in", &p(&sealed)], b"fresh");
    assert!(added.status.success(), "{}", text(&added.stderr));
    let decrypted = dotenv_values(&billing.ok(&["env", "decrypt", "--in", &p(&sealed)]));
    assert!(decrypted.contains(&("DB_PASS".to_owned(), "n3w-pass".to_owned())));
    assert_eq!(
        decrypted.last(),
        Some(&("NEW_ONE".to_owned(), "fresh".to_owned()))
    );

    admin.ok(&["key", "rotate", KEY]);
    let before = std::fs::read_to_string(&sealed).expect("read");
    billing.ok(&["env", "rotate", "--in", &p(&sealed)]);
    let after = std::fs::read_to_string(&sealed).expect("read");
    for (old, new) in before.lines().zip(after.lines()) {
        assert_eq!(old.contains("=tresor:v1:"), old != new, "{old} / {new}");
    }
    assert_eq!(
        dotenv_values(&billing.ok(&["env", "decrypt", "--in", &p(&sealed)])),
        decrypted
    );
}

/// An editor script: writes the file it was given to `seen`, then `then`.
fn editor(dir: &Path, seen: &Path, then: &str) -> String {
    let script = dir.join(format!("editor-{}.sh", then.len()));
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf %s \"$1\" > '{}'\n{then}\n", p(seen)),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    p(&script)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_re_encrypts_only_what_changed_and_always_removes_its_file() {
    let (_server, dir, _admin, billing, sealed) = encrypted().await;
    let seen = dir.path().join("seen");
    let temp_path = || PathBuf::from(std::fs::read_to_string(&seen).expect("the editor ran"));
    let before = std::fs::read_to_string(&sealed).expect("read");

    let change = editor(
        dir.path(),
        &seen,
        "sed -i 's/^EMPTY=.*/EMPTY=now-set/' \"$1\"",
    );
    let said = billing
        .clone()
        .with("EDITOR", &change)
        .without("VISUAL")
        .ok(&["env", "edit", &p(&sealed)]);
    assert!(
        said.contains("1 value(s) re-encrypted, 6 unchanged, 0 removed"),
        "{said}"
    );
    let after = std::fs::read_to_string(&sealed).expect("read");
    let changed = changed_lines(&before, &after);
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.starts_with("EMPTY=tresor:v1:"));
    assert!(!temp_path().exists(), "the temporary file is gone");
    let values = dotenv_values(&billing.ok(&["env", "decrypt", "--in", &p(&sealed)]));
    assert!(values.contains(&("EMPTY".to_owned(), "now-set".to_owned())));

    // An editor killed midway: nothing changes, the file is gone.
    let killed = editor(dir.path(), &seen, "echo 'EMPTY=half' >> \"$1\"; kill -9 $$");
    let refused = billing
        .clone()
        .with("EDITOR", &killed)
        .without("VISUAL")
        .fails(&["env", "edit", &p(&sealed)], 1);
    assert!(refused.contains("nothing changed"), "{refused}");
    assert!(!temp_path().exists());
    assert_eq!(std::fs::read_to_string(&sealed).expect("read"), after);

    // tresor terminated while the editor runs: the file is gone.
    std::fs::remove_file(&seen).expect("reset");
    let slow = editor(dir.path(), &seen, "sleep 30");
    let mut running = billing
        .clone()
        .with("EDITOR", &slow)
        .without("VISUAL")
        .command(&["env", "edit", &p(&sealed)])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    common::eventually("the editor to start", || {
        let seen = seen.clone();
        async move {
            std::fs::read_to_string(&seen)
                .ok()
                .filter(|s| !s.is_empty())
        }
    })
    .await;
    let plaintext_file = temp_path();
    assert!(plaintext_file.exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&plaintext_file)
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&running),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let status = running.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    assert!(!plaintext_file.exists(), "removed on SIGTERM");
    assert_eq!(std::fs::read_to_string(&sealed).expect("read"), after);
}
