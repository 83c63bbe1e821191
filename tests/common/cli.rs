//! The `tresor` CLI binary run against a test server with a fixed
//! connection environment (shared by the CLI tests).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::TestServer;

/// Runs the binary with a fixed connection environment.
pub struct Tresor {
    /// The environment every run gets (connection settings).
    pub env: Vec<(String, String)>,
    /// The folder the connection files are in.
    pub dir: PathBuf,
}

impl Tresor {
    /// Connection settings for `identity` against `server`, written to files.
    pub fn new(server: &TestServer, identity: &str, dir: &Path) -> Self {
        let folder = dir.join(identity.rsplit('/').next().unwrap_or("client"));
        let cert = server.fixture.ca.issue_client(identity).expect("cert");
        cert.save(&folder, true).expect("save cert");
        std::fs::write(dir.join("ca.pem"), server.fixture.ca.cert_pem()).expect("ca");
        let p = |path: PathBuf| path.display().to_string();
        Self {
            env: vec![
                (
                    "TRESOR_ADDR".into(),
                    format!("https://localhost:{}", server.addr.port()),
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

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tresor"));
        command
            .args(args)
            .env_remove("TRESOR_ADDR")
            .env_remove("TRESOR_CA")
            .env_remove("TRESOR_CERT")
            .env_remove("TRESOR_KEY")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run tresor")
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

/// Bytes as (lossy) UTF-8 text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
