//! The `tresor` CLI binary: one runner for every test that runs it, bare
//! ([`tresor`], [`command`]) or against a test server with a fixed
//! connection environment ([`Tresor`]).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use std::net::SocketAddr;

use tempfile::TempDir;

use super::{ADMIN, BILLING, Fixture, TestServer};

/// The `tresor` binary with `args`, to add environment, stdin or more
/// arguments to before running it.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_tresor"));
    command.args(args);
    command
}

/// Runs `tresor args` in the test's own environment; returns its output.
pub fn tresor(args: &[&str]) -> Output {
    run(&mut command(args))
}

/// Runs a command made by [`command`]; returns its output.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("run tresor")
}

/// The environment that says where a server is and who the client is;
/// [`Tresor`] removes every one of them from what a run inherits.
const CONNECTION_ENV: [&str; 6] = [
    "TRESOR_ADDR",
    "TRESOR_CA",
    "TRESOR_CERT",
    "TRESOR_KEY",
    "TRESOR_HEALTH_SERVICE",
    "TRESOR_HEALTH_SERVER_NAME",
];

/// Runs the binary with a fixed connection environment.
#[derive(Clone)]
pub struct Tresor {
    /// The environment every run gets (connection settings).
    pub env: Vec<(String, String)>,
    /// The folder the connection files are in.
    pub dir: PathBuf,
}

impl Tresor {
    /// Connection settings for `identity` against `server`, written to files.
    pub fn new(server: &TestServer, identity: &str, dir: &Path) -> Self {
        Self::at(&server.fixture, server.addr, identity, dir)
    }

    /// Connection settings for `identity` against the server at `addr`
    /// (certificates from `fixture`'s CA), written to files in `dir`.
    pub fn at(fixture: &Fixture, addr: SocketAddr, identity: &str, dir: &Path) -> Self {
        let folder = dir.join(identity.rsplit('/').next().unwrap_or("client"));
        let cert = fixture.ca.issue_client(identity).expect("cert");
        cert.save(&folder, true).expect("save cert");
        std::fs::write(dir.join("ca.pem"), fixture.ca.cert_pem()).expect("ca");
        let p = |path: PathBuf| path.display().to_string();
        Self {
            env: vec![
                (
                    "TRESOR_ADDR".into(),
                    format!("https://localhost:{}", addr.port()),
                ),
                ("TRESOR_CA".into(), p(dir.join("ca.pem"))),
                ("TRESOR_CERT".into(), p(folder.join("cert.pem"))),
                ("TRESOR_KEY".into(), p(folder.join("key.pem"))),
            ],
            dir: dir.to_owned(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn without(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// The same connection with the client certificate and key saved in
    /// `folder` (as `cert.pem` and `key.pem`) in place of its own.
    pub fn with_cert(self, folder: &Path) -> Self {
        let p = |name: &str| folder.join(name).display().to_string();
        self.with("TRESOR_CERT", &p("cert.pem"))
            .with("TRESOR_KEY", &p("key.pem"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = command(args);
        for key in CONNECTION_ENV {
            command.env_remove(key);
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.command(args))
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tresor");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    /// Runs a command that must succeed; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tresor {args:?} failed ({:?}): {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs a command with `--output json` that must succeed.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Runs a command that must fail with `code`; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "tresor {args:?}: stdout {} stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }
}

/// A fresh server, a temporary folder for the CLI's connection files, the
/// CLI as ADMIN and as BILLING, and `key_id` created through the CLI with
/// BILLING as its owner.
pub async fn server_with_billing_key(key_id: &str) -> (TestServer, TempDir, Tresor, Tresor) {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    let billing = Tresor::new(&server, BILLING, dir.path());
    admin.ok(&["key", "create", key_id, "--owner", BILLING]);
    (server, dir, admin, billing)
}

/// A run's exit code (-1 when killed by a signal) and its stdout followed
/// by its stderr, as text.
pub fn code_and_text(out: &Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// Bytes as (lossy) UTF-8 text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
