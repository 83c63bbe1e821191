//! A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl into a
//! temporary directory on a free loopback port (as the `postgres` user when
//! the tests run as root), or the server named by `TRESOR_TEST_POSTGRES_URL`.
//!
//! Without PostgreSQL binaries, tests skip with a printed reason on a
//! developer machine and fail when `CI` is set (`.ci/run` installs them).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A PostgreSQL server for one test.
pub struct Postgres {
    /// `postgres://user@host:port` without a database.
    base_url: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    as_postgres_user: bool,
    tls_only: bool,
}

fn unavailable(reason: &str) -> Option<Postgres> {
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL is required in CI: {reason}");
    }
    eprintln!(
        "skipping PostgreSQL test: {reason} (apt-get install postgresql, or set TRESOR_TEST_POSTGRES_URL)"
    );
    None
}

fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

impl Cluster {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL program")
    }

    fn data(&self) -> String {
        self.root.path().join("data").display().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.data();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    fn start(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on",
            self.port,
            self.root.path().display()
        );
        if self.tls_only {
            let root = self.root.path().display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={root}/server.crt -c ssl_key_file={root}/server.key -c hba_file={root}/pg_hba.conf"
            ));
        }
        let log = self.root.path().join("postgres.log").display().to_string();
        let out = self.pg_ctl(&["-w", "-t", "60", "-l", &log, "-o", &options, "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Postgres {
    /// A server for this test, or `None` (skip) without PostgreSQL outside CI.
    pub fn start() -> Option<Self> {
        Self::start_inner(None)
    }

    /// A server that accepts TCP connections only over TLS, with a server
    /// certificate issued by `ca` (no external server: this needs control of
    /// the configuration).
    pub fn start_tls_only(ca: &tresor::pki::CertificateAuthority) -> Option<Self> {
        if std::env::var("TRESOR_TEST_POSTGRES_URL").is_ok() && std::env::var_os("CI").is_none() {
            eprintln!("skipping: TLS-only PostgreSQL needs a cluster started by the test");
            return None;
        }
        Self::start_inner(Some(ca))
    }

    fn start_inner(tls: Option<&tresor::pki::CertificateAuthority>) -> Option<Self> {
        if let (Ok(url), None) = (std::env::var("TRESOR_TEST_POSTGRES_URL"), tls) {
            let base_url = url
                .rsplit_once('/')
                .map_or(url.clone(), |(base, _)| base.to_owned());
            return Some(Self {
                base_url,
                cluster: None,
            });
        }
        let Some(bin) = postgres_bin_dir() else {
            return unavailable("no PostgreSQL server binaries under /usr/lib/postgresql");
        };
        let as_postgres_user = is_root();
        let root = tempfile::Builder::new()
            .prefix("tresor-pg")
            .tempdir()
            .expect("tempdir");
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["postgres:postgres", &root.path().display().to_string()])
                .status()
                .expect("chown");
            assert!(status.success(), "chown to postgres failed");
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let cluster = Cluster {
            bin,
            root,
            port,
            as_postgres_user,
            tls_only: tls.is_some(),
        };
        if let Some(ca) = tls {
            let cert = ca
                .issue_server(
                    &["localhost".to_owned()],
                    &["127.0.0.1".parse().expect("ip")],
                )
                .expect("database certificate");
            let dir = cluster.root.path();
            std::fs::write(dir.join("server.crt"), &cert.cert_pem).expect("cert");
            tresor::fs::write_private_file(&dir.join("server.key"), cert.key_pem.as_bytes(), true)
                .expect("key");
            std::fs::write(
                dir.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .expect("hba");
            if as_postgres_user {
                let status = Command::new("chown")
                    .args(["-R", "postgres:postgres", &dir.display().to_string()])
                    .status()
                    .expect("chown");
                assert!(status.success());
            }
        }
        let data = cluster.data();
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "tresor",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.start();
        Some(Self {
            base_url: format!("postgres://tresor@127.0.0.1:{port}"),
            cluster: Some(cluster),
        })
    }

    /// Creates an empty database through the local socket (works for a
    /// TLS-only cluster too) and returns its TCP URL.
    pub async fn fresh_database_via_socket(&self) -> String {
        let cluster = self
            .cluster
            .as_ref()
            .expect("a cluster started by the test");
        let name = format!("t{}", hex::encode(rand_bytes()));
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(cluster.root.path())
            .port(cluster.port)
            .user("tresor")
            .dbname("postgres");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("socket");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        format!("{}/{name}", self.base_url)
    }

    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("t{}", hex::encode(rand_bytes()));
        self.superuser()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        format!("{}/{name}", self.base_url)
    }

    /// Stops the server like a crash (`pg_ctl stop -m immediate`).
    pub fn crash(&self) {
        let cluster = self
            .cluster
            .as_ref()
            .expect("a cluster started by the test");
        let out = cluster.pg_ctl(&["-m", "immediate", "stop"]);
        assert!(out.status.success(), "pg_ctl stop failed");
    }

    /// Starts the server again after [`Postgres::crash`].
    pub fn restart(&self) {
        self.cluster
            .as_ref()
            .expect("a cluster started by the test")
            .start();
    }

    /// The cluster's data directory, when the test started the server.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.cluster
            .as_ref()
            .map(|cluster| cluster.root.path().join("data"))
    }

    /// Writes every dirty page to the data files (`CHECKPOINT`), so that
    /// the files show what the database holds.
    pub async fn checkpoint(&self) {
        self.superuser()
            .await
            .batch_execute("CHECKPOINT")
            .await
            .expect("checkpoint");
    }

    /// A connection to the `postgres` database as the cluster's superuser.
    async fn superuser(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!("{}/postgres", self.base_url),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client
    }

    /// Whether this test controls the server process.
    pub fn is_local(&self) -> bool {
        self.cluster.is_some()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            let _ = cluster.pg_ctl(&["-m", "immediate", "stop"]);
        }
    }
}

fn rand_bytes() -> [u8; 8] {
    let bytes = tresor_crypto::random_bytes(8).expect("random");
    let mut out = [0u8; 8];
    out.copy_from_slice(bytes.expose());
    out
}
