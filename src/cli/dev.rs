//! `tresor dev`: one command from a fresh clone to a server that can be
//! called. Creates (or reuses) a folder with a dev CA, a server certificate,
//! an admin and two service client certificates, a master key and a sled
//! keystore; creates an example key; serves on 127.0.0.1; prints what to
//! paste to call it.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::config::{DEFAULT_LISTEN, Settings, TlsMaterial, TlsSettings, TlsSource};
use crate::error::Error;
use crate::identity::Identity;
use crate::master_key::FileMasterKey;
use crate::model::KeyId;
use crate::pki::CertificateAuthority;
use crate::server::Server;
use crate::service::ServiceOptions;

/// Identity of the dev admin.
pub const DEV_ADMIN: &str = "spiffe://tresor.dev/admin";
/// Example service identities.
pub const DEV_SERVICES: [&str; 2] = [
    "spiffe://tresor.dev/billing",
    "spiffe://tresor.dev/shipping",
];
/// Example key created for the billing service.
pub const DEV_EXAMPLE_KEY: &str = "billing/customer-records";

/// Flags of `tresor dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Folder for certificates, master key and keystore (created or reused).
    #[arg(long, default_value = ".tresor-dev", value_name = "DIR")]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
}

fn fail(what: &str) -> impl Fn(&dyn std::fmt::Display) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Creates whatever is missing in `dir`; returns the certificate folder of
/// each client by name.
fn prepare_folder(dir: &Path, listen: SocketAddr) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the dev folder")(&e))?;
    restrict_dir(dir)?;
    let ca_dir = dir.join("ca");
    let ca = if ca_dir.join("ca.pem").exists() {
        CertificateAuthority::load(&ca_dir).map_err(|e| fail("dev CA")(&e))?
    } else {
        let ca = CertificateAuthority::generate("tresor dev CA").map_err(|e| fail("dev CA")(&e))?;
        ca.save(&ca_dir).map_err(|e| fail("dev CA")(&e))?;
        ca
    };
    let server_dir = dir.join("server");
    if !server_dir.join("cert.pem").exists() {
        let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
        if !ips.contains(&listen.ip()) && !listen.ip().is_unspecified() {
            ips.push(listen.ip());
        }
        ca.issue_server(&["localhost".to_owned()], &ips)
            .and_then(|cert| cert.save(&server_dir, false))
            .map_err(|e| fail("dev server certificate")(&e))?;
    }
    for identity in std::iter::once(DEV_ADMIN).chain(DEV_SERVICES) {
        let client_dir = dir.join(client_folder(identity));
        if !client_dir.join("cert.pem").exists() {
            ca.issue_client(identity)
                .and_then(|cert| cert.save(&client_dir, false))
                .map_err(|e| fail("dev client certificate")(&e))?;
        }
    }
    let master = dir.join("master.key");
    if !master.exists() {
        FileMasterKey::generate(&master).map_err(|e| fail("dev master key")(&e))?;
    }
    Ok(())
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| fail("cannot restrict the dev folder")(&e))
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Folder name of a dev client: the last path segment of its identity.
fn client_folder(identity: &str) -> &str {
    identity.rsplit('/').next().unwrap_or(identity)
}

fn settings(dir: &Path, listen: SocketAddr) -> Result<Settings, String> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let admin = Identity::parse(DEV_ADMIN).map_err(|e| e.to_string())?;
    Ok(Settings {
        listen,
        store: crate::config::StoreSpec::Sled(dir.join("data")),
        master_key: crate::master_key::MasterKeySpec::File(dir.join("master.key")),
        tls: TlsSettings {
            source: TlsSource::Files {
                material: TlsMaterial::new(
                    read(dir.join("server/cert.pem"))?,
                    Zeroizing::new(read(dir.join("server/key.pem"))?),
                    read(dir.join("ca/ca.pem"))?,
                ),
                // Re-issue the dev certificates and the server follows.
                reload: Some(crate::config::TlsReload {
                    files: crate::config::TlsFiles {
                        tls_cert: dir.join("server/cert.pem"),
                        tls_key: dir.join("server/key.pem"),
                        client_ca: dir.join("ca/ca.pem"),
                        client_crls: Vec::new(),
                    },
                    watch_every: Some(std::time::Duration::from_secs(5)),
                }),
            },
            trust_domains: crate::identity::TrustDomains::any(),
        },
        transport: crate::config::TransportLimits::default(),
        // Unseal: one call by the dev admin, no token (the default).
        service: ServiceOptions {
            audit: Some(crate::service::AuditSettings::in_data_dir(
                &dir.join("data"),
            )),
            ..ServiceOptions::new(BTreeSet::from([admin]))
        },
        backups: None,
        metrics_listen: None,
        alert_webhook: None,
    })
}

async fn ensure_example_key(server: &Server) -> Result<(), String> {
    let admin = Identity::parse(DEV_ADMIN).map_err(|e| e.to_string())?;
    let owner = Identity::parse(DEV_SERVICES[0]).map_err(|e| e.to_string())?;
    let key_id = KeyId::parse(DEV_EXAMPLE_KEY).map_err(|e| e.to_string())?;
    match server
        .service()
        .create_key(&admin, &key_id, &owner, "example key created by tresor dev")
        .await
    {
        Ok(_) | Err(Error::AlreadyExists) => Ok(()),
        Err(e) => Err(format!("cannot create the example key: {e}")),
    }
}

fn print_instructions(dir: &Path, addr: SocketAddr) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let d = dir.display();
    let host = if addr.ip().is_loopback() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!(
        "tresor dev server is listening on {addr} (mTLS). Ctrl-C stops it; state stays in {d}."
    );
    println!();
    println!("# Call it as the admin ({DEV_ADMIN}):");
    println!("export TRESOR_ADDR=https://{host}");
    println!("export TRESOR_CA={d}/ca/ca.pem");
    println!("export TRESOR_CERT={d}/admin/cert.pem");
    println!("export TRESOR_KEY={d}/admin/key.pem");
    println!();
    println!(
        "# Service certificates: {d}/billing/ ({}) and {d}/shipping/ ({})",
        DEV_SERVICES[0], DEV_SERVICES[1]
    );
    println!(
        "# Key {DEV_EXAMPLE_KEY} is owned by billing. Encrypt \"hello\" as billing with grpcurl:"
    );
    println!(
        "grpcurl -cacert {d}/ca/ca.pem -cert {d}/billing/cert.pem -key {d}/billing/key.pem \\\n  -d '{{\"key_id\":\"{DEV_EXAMPLE_KEY}\",\"plaintext\":\"aGVsbG8=\",\"context\":{{\"tenant\":\"42\"}}}}' \\\n  {host} tresor.v1.Crypto/Encrypt"
    );
}

/// Runs `tresor dev`.
pub fn run(args: DevArgs) -> Result<(), String> {
    prepare_folder(&args.dir, args.listen)?;
    let settings = settings(&args.dir, args.listen)?;
    super::runtime()?.block_on(async move {
        let server = Server::prepare(settings)
            .await
            .map_err(|e| format!("cannot start: {e}"))?;
        ensure_example_key(&server).await?;
        let dir = args.dir.clone();
        super::bind_and_serve(server, args.listen, move |addr| {
            print_instructions(&dir, addr)
        })
        .await
    })
}
