//! Reloading a listener's TLS files while it serves: at once on SIGHUP, and
//! whenever their content changes (compared by digest every
//! `--tls-reload-interval`, so a Kubernetes secret volume swapping a
//! symlink is seen as well as a file rewritten in place).
//!
//! The files are read, validated and swapped together, never one alone:
//! the server certificate chain must parse and its first certificate be
//! valid now, the key must be a private key matching that certificate, the
//! client CA bundle must hold a certificate, every revocation list must
//! parse. The same rules apply to what a SPIFFE Workload API pushes
//! ([`super::tls_spiffe`]). A set that
//! fails is refused (an ERROR line naming the file or the reason, the
//! metric `tresor_tls_reload_total{result="refused"}`, the audit event
//! `tls_reload_refused`) and the old set keeps serving; a half-written
//! file is refused the same way and picked up once complete. An applied
//! set is logged with its certificate's serial and expiry
//! (`result="ok"`, audit event `tls_reloaded`). Connections established
//! before keep the set they started with.
//!
//! Expiry is visible before it hurts: the gauge
//! `tresor_tls_certificate_expiry_timestamp_seconds` holds when the served
//! certificate (`cert="server"`) and the earliest client CA
//! (`cert="client_ca"`) expire, and a WARN line, at most once a day, says
//! when the served certificate has less than a tenth of its lifetime or
//! less than seven days left.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use super::ServerError;
use super::tls::{LiveTls, ServingSet};
use crate::config::{TlsMaterial, TlsReload, TlsSettings, TlsSource, TransportLimits};
use crate::service::{ServedCertificate, Service};

/// A listener's live TLS configuration and the task that keeps it current.
#[derive(Debug)]
pub struct ServedTls {
    /// What new handshakes get.
    pub live: Arc<LiveTls>,
    /// Follows the files or the Workload API (`None`: served as it is).
    pub follower: Option<tokio::task::JoinHandle<()>>,
}

/// Builds the listener's TLS from `settings` and follows its source: the
/// files (when they are to be reloaded) or the SPIFFE Workload API.
pub async fn start(
    settings: &TlsSettings,
    limits: &TransportLimits,
    service: Arc<Service>,
) -> Result<ServedTls, ServerError> {
    let (material, reload) = match &settings.source {
        TlsSource::Files { material, reload } => (material, reload),
        TlsSource::Spiffe { endpoint } => {
            return super::tls_spiffe::start(
                endpoint,
                settings.trust_domains.clone(),
                limits,
                service,
            )
            .await;
        }
    };
    let set = ServingSet::from_material(material)?;
    let in_force = described(&set).ok();
    let live = Arc::new(LiveTls::new(set, settings.trust_domains.clone(), limits)?);
    let in_force = in_force.map(|(certificate, expiry)| {
        publish(&service, certificate, &expiry);
        expiry
    });
    let follower = reload.clone().map(|reload| {
        let (live, served) = (live.clone(), material.clone());
        tokio::spawn(async move { follow(live, reload, &served, in_force, service).await })
    });
    Ok(ServedTls { live, follower })
}

/// Follows `reload`'s files for `live` until the task is aborted.
/// `served` is the material `live` was built from, `in_force` its expiry.
pub async fn follow(
    live: Arc<LiveTls>,
    reload: TlsReload,
    served: &TlsMaterial,
    mut in_force: Option<Expiry>,
    service: Arc<Service>,
) {
    let mut seen = digest(served);
    let mut last_warned: Option<tokio::time::Instant> = None;
    let mut expiry_check = tokio::time::interval(EXPIRY_CHECK);
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
            _ = expiry_check.tick() => {
                warn_if_expiring(in_force.as_ref(), &mut last_warned);
                continue;
            }
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
        let outcome = read.and_then(|material| {
            ServingSet::from_material(&material)
                .map_err(|e| e.to_string())
                .and_then(|set| apply(&live, set))
        });
        if let Some(applied) = report(&service, outcome).await {
            in_force = Some(applied);
            last_warned = None;
        }
    }
}

/// How often the served certificate's remaining lifetime is checked.
const EXPIRY_CHECK: Duration = Duration::from_secs(60 * 60);
/// At most one expiry warning per this long.
const EXPIRY_WARNING_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// Warn below this much time left...
const EXPIRY_WARNING_LEFT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// ...or below this share of the certificate's lifetime left.
const EXPIRY_WARNING_SHARE: f64 = 0.1;

/// When the served material expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The served certificate's `not_before`, Unix seconds.
    pub server_from: i64,
    /// The served certificate's `not_after`, Unix seconds.
    pub server_until: i64,
    /// The earliest `not_after` of the client CA bundle, Unix seconds.
    pub earliest_client_ca: i64,
}

impl Expiry {
    /// Whether the served certificate, at Unix time `now`, has less than
    /// [`EXPIRY_WARNING_LEFT`] or [`EXPIRY_WARNING_SHARE`] of its lifetime
    /// left.
    pub fn expiring_soon(&self, now: i64) -> bool {
        let left = self.server_until - now;
        let floor = i64::try_from(EXPIRY_WARNING_LEFT.as_secs()).unwrap_or(i64::MAX);
        left < floor || self.in_last_tenth(now)
    }

    /// Whether the served certificate, at Unix time `now`, is in the last
    /// [`EXPIRY_WARNING_SHARE`] of its lifetime: for an SVID, which the
    /// Workload API replaces at about half its life, a rotation overdue.
    pub fn in_last_tenth(&self, now: i64) -> bool {
        let left = self.server_until - now;
        let lifetime = (self.server_until - self.server_from).max(1);
        (left as f64) < EXPIRY_WARNING_SHARE * lifetime as f64
    }
}

/// The served certificate and expiry of `set`.
pub fn described(set: &ServingSet) -> Result<(ServedCertificate, Expiry), String> {
    let leaf = leaf(set)?;
    let earliest_client_ca = set
        .client_roots
        .all()
        .filter_map(|der| {
            let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
            Some(cert.validity().not_after.timestamp())
        })
        .min()
        .ok_or("--client-ca: no certificate")?;
    let expiry = Expiry {
        server_from: leaf.not_before_unix,
        server_until: leaf.not_after_unix,
        earliest_client_ca,
    };
    Ok((leaf, expiry))
}

/// The chain's first certificate, or why it does not parse.
fn leaf(set: &ServingSet) -> Result<ServedCertificate, String> {
    let der = set.chain.first().ok_or("--tls-cert: no certificate")?;
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|_| "--tls-cert: the certificate does not parse".to_owned())?;
    let validity = cert.validity();
    Ok(ServedCertificate {
        subject: cert.subject().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before_unix: validity.not_before.timestamp(),
        not_after_unix: validity.not_after.timestamp(),
    })
}

/// Makes `certificate` and `expiry` what the status and the expiry gauges
/// show.
pub fn publish(service: &Service, certificate: ServedCertificate, expiry: &Expiry) {
    service
        .metrics()
        .tls_expiry(expiry.server_until, expiry.earliest_client_ca);
    service.set_served_certificate(certificate);
}

/// The Unix time now, in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn warn_if_expiring(expiry: Option<&Expiry>, last_warned: &mut Option<tokio::time::Instant>) {
    let Some(expiry) = expiry else { return };
    let now = unix_now();
    if !expiry.expiring_soon(now)
        || last_warned.is_some_and(|at| at.elapsed() < EXPIRY_WARNING_EVERY)
    {
        return;
    }
    *last_warned = Some(tokio::time::Instant::now());
    tracing::warn!(
        expires_unix = expiry.server_until,
        seconds_left = expiry.server_until - now,
        "the server certificate expires soon: renew it (the new files are picked up without a restart)"
    );
}

/// A set that passed validation and serves new handshakes.
pub struct Applied {
    /// Its server certificate.
    certificate: ServedCertificate,
    /// Its expiry.
    expiry: Expiry,
}

/// Validates `set` (the certificate must be valid now; rustls checks the
/// rest) and, when it passes, makes it the one new handshakes use.
pub fn apply(live: &LiveTls, set: ServingSet) -> Result<Applied, String> {
    let (certificate, expiry) = described(&set)?;
    let now = ASN1Time::now().timestamp();
    if now < certificate.not_before_unix || certificate.not_after_unix < now {
        return Err(format!(
            "--tls-cert: the certificate is not valid now (valid from {} to {})",
            unix_time(certificate.not_before_unix),
            unix_time(certificate.not_after_unix)
        ));
    }
    live.install(set).map_err(|e| e.to_string())?;
    Ok(Applied {
        certificate,
        expiry,
    })
}

/// A Unix time as RFC 3339 text.
fn unix_time(seconds: i64) -> String {
    u64::try_from(seconds).map_or_else(
        |_| seconds.to_string(),
        |s| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string(),
    )
}

/// Logs, counts and audits the outcome of a reload; when a set was
/// applied, publishes it and returns its expiry.
pub async fn report(service: &Service, outcome: Result<Applied, String>) -> Option<Expiry> {
    match outcome {
        Ok(Applied {
            certificate,
            expiry,
        }) => {
            let described = format!(
                "serial {} expires {}",
                certificate.serial,
                unix_time(certificate.not_after_unix)
            );
            tracing::info!(certificate = %described, "TLS material reloaded");
            service.metrics().tls_reload(true);
            service.audit_event("tls_reloaded", None, &described).await;
            publish(service, certificate, &expiry);
            Some(expiry)
        }
        Err(reason) => {
            tracing::error!(%reason, "TLS material refused; the previous set keeps serving");
            service.metrics().tls_reload(false);
            service
                .audit_event("tls_reload_refused", None, &reason)
                .await;
            None
        }
    }
}

/// A digest of the files' contents.
fn digest(material: &TlsMaterial) -> [u8; 32] {
    let mut hash = Sha256::new();
    let parts = [
        material.cert_pem.as_bytes(),
        material.key_pem.as_bytes(),
        material.client_ca_pem.as_bytes(),
    ];
    for part in parts
        .into_iter()
        .chain(material.client_crls.iter().map(Vec::as_slice))
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 60 * 60;

    fn lasting(from: i64, until: i64) -> Expiry {
        Expiry {
            server_from: from,
            server_until: until,
            earliest_client_ca: until,
        }
    }

    #[test]
    fn certificates_warn_in_their_last_tenth_or_last_week_whichever_is_longer() {
        // A year: a tenth is 36.5 days, longer than a week.
        let year = lasting(0, 365 * DAY);
        assert!(!year.expiring_soon(300 * DAY));
        assert!(year.expiring_soon(330 * DAY), "under a tenth left");
        // 30 days: a tenth is 3 days, so the week counts.
        let month = lasting(0, 30 * DAY);
        assert!(!month.expiring_soon(22 * DAY));
        assert!(month.expiring_soon(24 * DAY), "under seven days left");
        // An hour-long SVID always has less than seven days left: it warns
        // (at most once a day) from the start.
        assert!(lasting(0, 3600).expiring_soon(0));
        // Its rotation is overdue only in its last six minutes.
        assert!(!lasting(0, 3600).in_last_tenth(3000));
        assert!(lasting(0, 3600).in_last_tenth(3300));
    }
}
