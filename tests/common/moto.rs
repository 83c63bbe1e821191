//! moto's KMS server as a real process for the AWS KMS tests, with its
//! request recorder as the KMS call log.
//!
//! Without python3 and moto, tests skip with a printed reason on a developer
//! machine and fail when `CI` is set (`.ci/run` installs moto).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Dummy credentials and region for moto, as environment for `tresor`.
pub const AWS_ENV: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_PROFILE", "tresor-tests-no-profile"),
];

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
    recording: std::path::PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

fn unavailable(reason: &str) -> Option<Moto> {
    if std::env::var_os("CI").is_some() {
        panic!("moto is required in CI: {reason} (python3 -m pip install 'moto[server]')");
    }
    eprintln!("skipping AWS KMS test: {reason} (python3 -m pip install 'moto[server]')");
    None
}

impl Moto {
    /// Starts moto on a free loopback port, or `None` (skip) where moto is
    /// missing and `CI` is not set.
    pub fn start() -> Option<Self> {
        let probe = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match probe {
            Err(_) => return unavailable("python3 is not installed"),
            Ok(status) if !status.success() => {
                return unavailable("the python module moto is not installed");
            }
            Ok(_) => {}
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        // moto writes its request recording to a file; keep it out of the
        // source tree.
        let recording = std::env::temp_dir().join(format!("tresor-moto-{port}.jsonl"));
        let child = Command::new("python3")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto");
        let moto = Self {
            child,
            port,
            recording,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto did not start listening"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// The endpoint URL to give `--aws-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect moto");
        let mut request = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// Creates a symmetric KMS key; returns its key id.
    pub fn create_key(&self) -> String {
        let body = self.request(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "TrentService.CreateKey"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=x",
                ),
            ],
            "{}",
        );
        let start = body
            .find("\"KeyId\": \"")
            .expect("KeyId in CreateKey response")
            + 10;
        body[start..].split('"').next().expect("key id").to_owned()
    }

    /// Starts recording every request moto receives.
    pub fn start_recording(&self) {
        self.request("POST", "/moto-api/recorder/reset-recording", &[], "");
        self.request("POST", "/moto-api/recorder/start-recording", &[], "");
    }

    /// How many recorded requests called this KMS operation (`Decrypt`).
    pub fn calls(&self, operation: &str) -> usize {
        let log = self.request("GET", "/moto-api/recorder/download-recording", &[], "");
        let needle = format!("\"x-amz-target\": \"trentservice.{operation}\"").to_lowercase();
        log.lines()
            .filter(|line| line.to_lowercase().contains(&needle))
            .count()
    }
}
