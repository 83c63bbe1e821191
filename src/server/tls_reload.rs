//! Reloading a listener's TLS files while it serves: at once on SIGHUP, and
//! whenever their content changes (compared by digest every
//! `--tls-reload-interval`, so a Kubernetes secret volume swapping a
//! symlink is seen as well as a file rewritten in place).
//!
//! The three files are read, validated and swapped together, never one
//! alone: the server certificate chain must parse and its first
//! certificate be valid now, the key must be a private key matching that
//! certificate, the client CA bundle must hold a certificate. A set that
//! fails is refused (an ERROR line naming the file or the reason, the
//! metric `tresor_tls_reload_total{result="refused"}`, the audit event
//! `tls_reload_refused`) and the old set keeps serving; a half-written
//! file is refused the same way and picked up once complete. An applied
//! set is logged with its certificate's serial and expiry
//! (`result="ok"`, audit event `tls_reloaded`). Connections established
//! before keep the set they started with.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::tls::{LiveTls, server_config};
use crate::config::{TlsMaterial, TlsReload};
use crate::service::Service;

/// Follows `reload`'s files for `live` until the task is aborted.
/// `served` is the material `live` was built from.
pub async fn follow(
    live: Arc<LiveTls>,
    reload: TlsReload,
    served: &TlsMaterial,
    service: Arc<Service>,
) {
    let mut seen = digest(served);
    let mut hangup = Hangup::new();
    let mut tick = reload.watch_every.map(|every| {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    loop {
        let forced = tokio::select! {
            () = hangup.recv() => true,
            () = next_tick(tick.as_mut()) => false,
        };
        let read = reload.files.read().map_err(|e| e.to_string());
        let now_seen = match &read {
            Ok(material) => digest(material),
            Err(reason) => Sha256::digest(reason.as_bytes()).into(),
        };
        if !forced && now_seen == seen {
            continue;
        }
        seen = now_seen;
        let outcome = read.and_then(|material| apply(&live, &material));
        report(&service, outcome).await;
    }
}

/// Validates `material` and, when it passes, makes it the one new
/// handshakes use. Returns what the audit record says of it.
fn apply(live: &LiveTls, material: &TlsMaterial) -> Result<String, String> {
    let described = leaf_in_force(&material.cert_pem)?;
    let config = server_config(material).map_err(|e| e.to_string())?;
    live.replace(config);
    Ok(described)
}

/// The serial and expiry of the chain's first certificate, or why it cannot
/// serve now (unparsable, expired, not yet valid).
fn leaf_in_force(cert_pem: &str) -> Result<String, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|_| "--tls-cert: no PEM certificate".to_owned())?;
    let (_, cert) = X509Certificate::from_der(&pem.contents)
        .map_err(|_| "--tls-cert: the certificate does not parse".to_owned())?;
    let validity = cert.validity();
    if !validity.is_valid() {
        return Err(format!(
            "--tls-cert: the certificate is not valid now (valid from {} to {})",
            validity.not_before, validity.not_after
        ));
    }
    Ok(format!(
        "serial {} expires {}",
        cert.raw_serial_as_string(),
        validity.not_after
    ))
}

async fn report(service: &Service, outcome: Result<String, String>) {
    match outcome {
        Ok(described) => {
            tracing::info!(certificate = %described, "TLS files reloaded");
            service.metrics().tls_reload(true);
            service.audit_event("tls_reloaded", None, &described).await;
        }
        Err(reason) => {
            tracing::error!(%reason, "TLS files refused; the previous set keeps serving");
            service.metrics().tls_reload(false);
            service
                .audit_event("tls_reload_refused", None, &reason)
                .await;
        }
    }
}

/// A digest of the three files' contents.
fn digest(material: &TlsMaterial) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [
        material.cert_pem.as_bytes(),
        material.key_pem.as_bytes(),
        material.client_ca_pem.as_bytes(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

async fn next_tick(tick: Option<&mut tokio::time::Interval>) {
    match tick {
        Some(tick) => {
            tick.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// SIGHUP, where there is one.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|e| tracing::warn!(error = %e, "SIGHUP will not reload TLS"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}
