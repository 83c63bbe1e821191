//! `tresor certs ...`: a CA and certificates for real deployments, with the
//! same code `tresor dev` uses.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::output::{self, OutputFormat};
use crate::identity::Identity;
use crate::pki::{CertificateAuthority, LEAF_LIFETIME, Validity};

/// `tresor certs ...`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a new CA (writes ca.pem and ca.key, mode 0600).
    ///
    /// Example: tresor certs ca --out ./ca
    Ca {
        /// Folder to write into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "tresor CA", value_name = "NAME")]
        name: String,
    },
    /// Issue a client certificate for a service identity (writes cert.pem and key.pem).
    ///
    /// Example: tresor certs issue --ca ./ca --identity spiffe://example.org/billing --out ./billing
    Issue {
        /// Folder holding ca.pem and ca.key.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The identity: a URI such as spiffe://example.org/billing (goes in a
        /// URI SAN), a DNS name such as billing.example.org (a DNS SAN), or
        /// cn:NAME (the subject CN only, no SAN).
        #[arg(long, value_name = "IDENTITY")]
        identity: String,
        /// Folder to write into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How long the certificate is valid, e.g. 2m, 1h, 90d (default one
        /// year). Short lifetimes are for tests and demos of rotation.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },
    /// Issue a server certificate (writes cert.pem and key.pem).
    ///
    /// Example: tresor certs server --ca ./ca --dns tresor.internal --ip 10.0.0.5 --out ./server
    Server {
        /// Folder holding ca.pem and ca.key.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// DNS name the server is reached by (repeatable).
        #[arg(long, value_name = "NAME")]
        dns: Vec<String>,
        /// IP address the server is reached by (repeatable).
        #[arg(long, value_name = "ADDR")]
        ip: Vec<IpAddr>,
        /// Folder to write into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How long the certificate is valid, e.g. 2m, 1h, 90d (default one
        /// year).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },
    /// Write a certificate revocation list of the CA, for `tresor serve
    /// --client-crl` (replaces FILE atomically, so a server following it
    /// never reads half a list).
    ///
    /// Example: tresor certs crl --ca ./ca --revoke ./billing/cert.pem --out ./ca/clients.crl
    Crl {
        /// Folder holding ca.pem and ca.key.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// A certificate (PEM) to list as revoked (repeatable; none writes
        /// an empty list).
        #[arg(long, value_name = "CERT_FILE")]
        revoke: Vec<PathBuf>,
        /// When the next list is due, e.g. 7d.
        #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = parse_ttl)]
        next_update: Duration,
        /// The list file to write (PEM).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Runs a `tresor certs` command; returns what to print (one JSON document
/// `{"files": [...]}` with `--output json`).
pub fn run(command: CertsCommand, format: OutputFormat) -> Result<String, String> {
    let (files, summary) = match command {
        CertsCommand::Ca { out, name } => {
            let ca = CertificateAuthority::generate(&name).map_err(|e| e.to_string())?;
            ca.save(&out).map_err(|e| e.to_string())?;
            (vec![out.join("ca.pem"), out.join("ca.key")], String::new())
        }
        CertsCommand::Issue {
            ca,
            identity,
            out,
            ttl,
        } => {
            let identity = Identity::parse(&identity).map_err(|e| format!("--identity: {e}"))?;
            let validity = Validity::from_now(ttl.unwrap_or(LEAF_LIFETIME));
            let ca = CertificateAuthority::load(&ca).map_err(|e| e.to_string())?;
            ca.issue_client_with_validity(identity.as_str(), validity)
                .and_then(|cert| cert.save(&out, false))
                .map_err(|e| e.to_string())?;
            (
                vec![out.join("cert.pem"), out.join("key.pem")],
                format!(" for {identity}"),
            )
        }
        CertsCommand::Server {
            ca,
            dns,
            ip,
            out,
            ttl,
        } => {
            if dns.is_empty() && ip.is_empty() {
                return Err("give at least one --dns NAME or --ip ADDR".into());
            }
            let validity = Validity::from_now(ttl.unwrap_or(LEAF_LIFETIME));
            let ca = CertificateAuthority::load(&ca).map_err(|e| e.to_string())?;
            ca.issue_server_with_validity(&dns, &ip, validity)
                .and_then(|cert| cert.save(&out, false))
                .map_err(|e| e.to_string())?;
            (
                vec![out.join("cert.pem"), out.join("key.pem")],
                String::new(),
            )
        }
        CertsCommand::Crl {
            ca,
            revoke,
            next_update,
            out,
        } => {
            let ca = CertificateAuthority::load(&ca).map_err(|e| e.to_string())?;
            let serials = revoke
                .iter()
                .map(|path| serial_of(path))
                .collect::<Result<Vec<_>, _>>()?;
            // Unix seconds: each list written later has a higher number.
            let number = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs());
            let list = ca
                .revocation_list(&serials, number, next_update)
                .map_err(|e| e.to_string())?;
            crate::fs::write_file(&out, list.as_bytes(), true, 0o644)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            (
                vec![out],
                format!(" revoking {} certificate(s)", serials.len()),
            )
        }
    };
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Ok(match format {
        OutputFormat::Json => output::json(&serde_json::json!({ "files": names })),
        OutputFormat::Human => format!("wrote {}{summary}\n", names.join(" and ")),
    })
}

/// The serial number of the PEM certificate in `path`.
fn serial_of(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("--revoke {}: {e}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|_| format!("--revoke {}: not a PEM certificate", path.display()))?;
    let cert = pem.parse_x509().map_err(|_| {
        format!(
            "--revoke {}: the certificate does not parse",
            path.display()
        )
    })?;
    Ok(cert.raw_serial().to_vec())
}

/// `--ttl`: a duration such as `2m`, `1h` or `90d`, at least one second.
fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(1) {
        return Err("a certificate must be valid for at least one second".into());
    }
    Ok(ttl)
}
