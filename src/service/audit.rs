//! The service's side of the audit log: the audit key (created once, sealed
//! under the root key), recording requests and lifecycle events, and
//! checkpoints remembered in the keystore.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Service;
use super::keyring::Keyring;
use super::root_secrets::{self, RootSecret};
use crate::audit::record::OversizedContext;
use crate::audit::{AuditLog, AuditOptions, Entry, ItemEntry, RecordKind};
use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::Rpc;
use crate::store::{AuditMark, KeyStore};
use tresor_crypto::SecretKey;

/// Longest key id copied into a record as given (a refused, malformed id
/// is recorded, cut to this length).
const MAX_RECORDED_KEY_ID: usize = 256;

/// A key id as a record holds it: none when empty, cut to
/// [`MAX_RECORDED_KEY_ID`] bytes (a refused, malformed id is recorded too).
fn recorded_key_id(key_id: Option<String>) -> Option<String> {
    let mut key_id = key_id.filter(|id| !id.is_empty())?;
    if key_id.len() > MAX_RECORDED_KEY_ID {
        let mut cut = MAX_RECORDED_KEY_ID;
        while !key_id.is_char_boundary(cut) {
            cut -= 1;
        }
        key_id.truncate(cut);
    }
    Some(key_id)
}

/// A peer address as its `Display` writes it (`192.0.2.7:50412`,
/// `[2001:db8::1]:443`). IPv4, the common case, is written with `itoa`
/// instead of the formatting machinery, which showed in profiles of the
/// request path (docs/BENCHMARKS.md, "Figures behind design choices").
fn peer_text(peer: SocketAddr) -> String {
    let SocketAddr::V4(v4) = peer else {
        return peer.to_string();
    };
    let mut numbers = itoa::Buffer::new();
    let mut text = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(numbers.format(octet));
    }
    text.push(':');
    text.push_str(numbers.format(v4.port()));
    text
}

/// Where the service writes its audit log.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// File, rotation and test switches.
    pub options: AuditOptions,
    /// This log's name in the keystore, for its checkpoint (the replica
    /// name with a shared keystore).
    pub log_name: String,
}

impl AuditSettings {
    /// The default log of a sled keystore in `data_dir`.
    pub fn in_data_dir(data_dir: &std::path::Path) -> Self {
        Self {
            options: AuditOptions::at(default_audit_file(data_dir)),
            log_name: LOCAL_LOG.into(),
        }
    }
}

/// The log name of a single-node (sled) keystore.
pub const LOCAL_LOG: &str = "local";

/// The default audit file of a data directory.
pub fn default_audit_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("audit").join("audit.jsonl")
}

/// Opens the audit key with the root key it is sealed under.
pub(crate) fn open_audit_key(root: &SecretKey, sealed: &[u8]) -> Result<SecretKey, Error> {
    root_secrets::open(root, RootSecret::Audit, sealed)
}

/// The audit key of a keystore, for offline verification: unwraps the
/// root key with the master key (as `serve` does) and opens the audit key.
pub async fn offline_audit_key(
    store: &dyn KeyStore,
    master: &dyn crate::master_key::MasterKey,
) -> Result<SecretKey, Error> {
    let stored = store
        .root()
        .await?
        .ok_or(Error::Store(StoreError::NotInitialised))?;
    let sealed = stored.audit_key.as_ref().ok_or_else(|| {
        Error::FailedPrecondition(crate::error::Precondition::Other(
            "this keystore has no audit key: no server with auditing on has used it".into(),
        ))
    })?;
    let root = super::backup::unwrap_current(&stored, master).await?;
    open_audit_key(&root, sealed)
}

/// The latest checkpoint `store` holds for the audit log `log_name` (the
/// replica name with a shared keystore, [`LOCAL_LOG`] with sled).
pub async fn stored_checkpoint(
    store: &dyn KeyStore,
    log_name: &str,
) -> Result<Option<crate::audit::Checkpoint>, Error> {
    let Some(mark) = store.audit_mark(log_name).await? else {
        return Ok(None);
    };
    let hash = mark.record_hash.try_into().map_err(|_| {
        Error::Store(StoreError::Corrupt(format!(
            "the audit checkpoint of log {log_name} is not a SHA-256 hash"
        )))
    })?;
    Ok(Some(crate::audit::Checkpoint {
        seq: mark.sequence,
        hash,
    }))
}

/// An encryption context as an audit record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditedContext {
    /// Within the limits: keys in clear, values as keyed digests.
    Pairs(BTreeMap<String, String>),
    /// Over the limits (the call or item is refused): its size and one
    /// keyed digest of all of it.
    Oversized(OversizedContext),
}

impl AuditedContext {
    /// The record fields: (`context`, `context_oversized`).
    fn into_fields(
        context: Option<Self>,
    ) -> (Option<BTreeMap<String, String>>, Option<OversizedContext>) {
        match context {
            None => (None, None),
            Some(Self::Pairs(pairs)) => (Some(pairs), None),
            Some(Self::Oversized(oversized)) => (None, Some(oversized)),
        }
    }
}

/// What the server found checking its own audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Files read.
    pub files: usize,
    /// Records checked.
    pub records: u64,
    /// First record checked.
    pub first_record: u64,
    /// The checkpoint written for the check: the last record checked.
    pub last_record: u64,
    /// The first problem, if the log is not intact.
    pub problem: Option<String>,
}

/// One handled call, as the gRPC edge saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The gRPC method.
    pub operation: Rpc,
    /// Request id.
    pub request_id: String,
    /// The caller, when its certificate names one.
    pub identity: Option<Identity>,
    /// The caller's address.
    pub peer: Option<SocketAddr>,
    /// The key id as given.
    pub key_id: Option<String>,
    /// The key an alias resolved to, when the call named an alias.
    pub resolved_key_id: Option<String>,
    /// What authorized a data-plane call: `owner`, `grant to ID`, or a
    /// conditional grant with its terms (a batch: each distinct one).
    pub allowed_by: Option<String>,
    /// For a refused data-plane call: the conditional grant(s) that came
    /// closest to allowing it (for operators; never told to the caller).
    pub closest_grant: Option<String>,
    /// The key version used, when known.
    pub key_version: Option<u32>,
    /// A batch call's number of items (`None` for a single call).
    pub items: Option<u32>,
    /// The context digest from [`Service::audit_context`].
    pub context: Option<AuditedContext>,
    /// The gRPC status code name (`OK`, `PERMISSION_DENIED`...).
    pub status: &'static str,
    /// Time spent.
    pub latency: Duration,
    /// What else an auditor needs to know of the call (never secret): the
    /// master key a rotation asked for, an Unseal approval's progress.
    pub detail: Option<String>,
}

/// One processed item of a batch call.
#[derive(Debug, Clone)]
pub struct ItemRecord {
    /// The key id as given.
    pub key_id: String,
    /// The key an alias resolved to, when the item named an alias and
    /// succeeded.
    pub resolved_key_id: Option<String>,
    /// The key version used, when the item succeeded.
    pub key_version: Option<u32>,
    /// The context digest from [`Service::audit_context`].
    pub context: Option<AuditedContext>,
    /// The item's gRPC status code name.
    pub status: &'static str,
}

/// A state-changing call, as its intent record names it.
#[derive(Debug)]
pub struct Intent<'a> {
    /// The gRPC method.
    pub operation: Rpc,
    /// Request id.
    pub request_id: &'a str,
    /// The caller.
    pub identity: &'a Identity,
    /// The caller's address.
    pub peer: Option<SocketAddr>,
    /// The key id as given.
    pub key_id: Option<&'a str>,
    /// What else the call named (never secret).
    pub detail: Option<&'a str>,
}

impl Service {
    /// Opens the audit log with the keystore's audit key (created on first
    /// use). Called once at start with the keyring unsealed.
    pub(super) async fn open_audit_log(&self, keyring: &Keyring) -> Result<(), Error> {
        let Some(settings) = &self.options.audit else {
            return Ok(());
        };
        let (_, root) = keyring.current_root()?;
        let key =
            root_secrets::load_or_create(self.store.as_ref(), &root, RootSecret::Audit).await?;
        let checkpoint = stored_checkpoint(self.store.as_ref(), &settings.log_name).await?;
        let log = AuditLog::open(Arc::new(key), settings.options.clone(), checkpoint)?;
        tracing::info!(file = %log.path().display(), "audit log open");
        let _ = self.audit.set(log);
        self.audit_event("server_started", None, env!("CARGO_PKG_VERSION"))
            .await;
        // Moves the keystore's checkpoint onto this run's chain at once
        // (past an accepted gap, too).
        self.audit_checkpoint().await
    }

    /// The audit log, when auditing is on.
    pub fn audit_log(&self) -> Option<&AuditLog> {
        self.audit.get()
    }

    /// The digest of an encryption context for a record: keys in clear,
    /// values as keyed digests; over the limits
    /// ([`super::context_within_limits`]), one digest of it all, so that
    /// recording a refused context costs no more than reading it. `None`
    /// when auditing is off or the context is empty.
    pub fn audit_context(&self, context: &HashMap<String, String>) -> Option<AuditedContext> {
        let log = self.audit.get()?;
        if context.is_empty() {
            return None;
        }
        let pairs = || context.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !super::context_within_limits(context.len(), pairs()) {
            return Some(AuditedContext::Oversized(log.oversized_context(pairs())));
        }
        Some(AuditedContext::Pairs(
            context
                .iter()
                .map(|(key, value)| (key.clone(), log.context_digest(value)))
                .collect(),
        ))
    }

    /// Writes the intent record of a state-changing control-plane call
    /// before it runs, so an audit failure refuses the call instead of
    /// leaving a change without a record. Other calls write nothing here.
    pub async fn record_intent(&self, intent: Intent<'_>) -> Result<(), Error> {
        if !intent.operation.changes_state() {
            return Ok(());
        }
        let Some(log) = self.audit.get() else {
            return Ok(());
        };
        let mut entry = Entry::event(intent.operation.name(), intent.detail.unwrap_or_default());
        entry.kind = RecordKind::Intent;
        entry.request_id = Some(intent.request_id.to_owned());
        entry.identity = Some(intent.identity.as_str().to_owned());
        entry.peer = intent.peer.map(peer_text);
        entry.key_id = recorded_key_id(intent.key_id.map(str::to_owned));
        log.append(entry).await?;
        Ok(())
    }

    /// Writes the record of a handled call; for a batch call whose items
    /// were processed, with each item's key, version, context digest and
    /// status in it. An error means the record is not written and the call
    /// must be refused. Also counts the call (and items) in the metrics and feeds
    /// the anomaly detector: each item as a call on its own key, the call
    /// itself only when it processed no items.
    pub async fn record_request(
        &self,
        record: RequestRecord,
        items: Vec<ItemRecord>,
    ) -> Result<(), Error> {
        if let Some(identity) = &record.identity {
            self.metrics.identity_request(identity.as_str());
            if items.is_empty() {
                self.watch_call(
                    identity,
                    record.operation,
                    record.key_id.as_deref(),
                    record.status,
                )
                .await;
            }
            for item in &items {
                self.watch_call(identity, record.operation, Some(&item.key_id), item.status)
                    .await;
            }
        }
        let operation = record.operation;
        let (status, latency) = (record.status, record.latency);
        for item in &items {
            self.metrics.batch_item(operation.name(), item.status);
        }
        let written = self.write_request_records(record, items).await;
        let status = if written.is_ok() {
            status
        } else {
            "UNAVAILABLE"
        };
        self.metrics.request(operation.name(), status, latency);
        written
    }

    async fn write_request_records(
        &self,
        record: RequestRecord,
        items: Vec<ItemRecord>,
    ) -> Result<(), Error> {
        let Some(log) = self.audit.get() else {
            return Ok(());
        };
        let results = (!items.is_empty()).then(|| {
            items
                .into_iter()
                .map(|item| {
                    let (context, context_oversized) = AuditedContext::into_fields(item.context);
                    ItemEntry {
                        key_id: recorded_key_id(Some(item.key_id)),
                        resolved_key_id: item.resolved_key_id,
                        key_version: item.key_version,
                        context,
                        context_oversized,
                        status: item.status.into(),
                    }
                })
                .collect()
        });
        let (context, context_oversized) = AuditedContext::into_fields(record.context);
        log.append(Entry {
            kind: RecordKind::Request,
            operation: record.operation.name().into(),
            request_id: Some(record.request_id),
            identity: record.identity.map(Identity::into_string),
            peer: record.peer.map(peer_text),
            key_id: recorded_key_id(record.key_id),
            resolved_key_id: record.resolved_key_id,
            allowed_by: record.allowed_by,
            closest_grant: record.closest_grant,
            key_version: record.key_version,
            items: record.items,
            results,
            context,
            context_oversized,
            status: Some(record.status.into()),
            latency_us: Some(u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX)),
            detail: record.detail,
            truncated: None,
        })
        .await?;
        Ok(())
    }

    /// Records something that happened without a request. The event has
    /// happened already, so a failure to record it is logged, not returned.
    pub async fn audit_event(&self, operation: &'static str, key_id: Option<&str>, detail: &str) {
        if let Err(e) = self.audit_event_first(operation, key_id, detail).await {
            tracing::error!(error = %e, event = operation, "audit event not recorded");
        }
    }

    /// Records something about to happen without a request; when the
    /// record cannot be written, the caller must not do it.
    pub async fn audit_event_first(
        &self,
        operation: &'static str,
        key_id: Option<&str>,
        detail: &str,
    ) -> Result<(), Error> {
        let Some(log) = self.audit.get() else {
            return Ok(());
        };
        let entry = Entry {
            key_id: key_id.map(str::to_owned),
            ..Entry::event(operation, detail)
        };
        log.append(entry).await?;
        Ok(())
    }

    /// Writes a checkpoint record and remembers it in the keystore, so that
    /// `tresor audit verify` detects a log cut short before it.
    pub async fn audit_checkpoint(&self) -> Result<(), Error> {
        let Some(log) = self.audit.get() else {
            return Ok(());
        };
        let checkpoint = log.checkpoint().await?;
        self.remember_checkpoint(checkpoint).await
    }

    /// Checks this server's audit log up to a checkpoint written now
    /// (auditors only): every record authentic, in sequence and chained.
    pub async fn verify_audit_log(&self, identity: &Identity) -> Result<AuditReport, Error> {
        super::authz::require(self.caller(identity).await?, crate::model::Role::Auditor)?;
        let log = self.audit.get().ok_or_else(|| {
            Error::FailedPrecondition(crate::error::Precondition::Other(
                "auditing is off on this server (--no-audit)".into(),
            ))
        })?;
        let checkpoint = log.checkpoint().await?;
        self.remember_checkpoint(checkpoint).await?;
        let keys = log.keys();
        let path = log.path().to_path_buf();
        let checked = tokio::task::spawn_blocking(move || {
            let files = crate::audit::files::log_files(&path).map_err(|e| e.to_string())?;
            let expect = crate::audit::Expectations {
                from_genesis: true,
                checkpoint: Some(checkpoint),
                stop_at_checkpoint: true,
            };
            Ok::<_, String>(crate::audit::verify_with_keys(&keys, &files, expect))
        })
        .await
        .map_err(|e| Error::Store(StoreError::Backend(format!("audit check failed: {e}"))))?
        .map_err(|e| Error::Store(StoreError::Backend(format!("audit files: {e}"))))?;
        Ok(match checked {
            Ok(verified) => AuditReport {
                files: verified.files,
                records: verified.records,
                first_record: verified.first_seq,
                last_record: verified.last_seq,
                problem: None,
            },
            Err(problem) => {
                tracing::error!(%problem, "the audit log is NOT intact");
                AuditReport {
                    files: 0,
                    records: 0,
                    first_record: 0,
                    last_record: checkpoint.seq,
                    problem: Some(problem.to_string()),
                }
            }
        })
    }

    /// Writes the final checkpoint and stops the audit writer (shutdown).
    pub async fn close_audit_log(&self) -> Result<(), Error> {
        let Some(log) = self.audit.get() else {
            return Ok(());
        };
        self.audit_event("server_stopping", None, "").await;
        let checkpoint = log.close().await?;
        self.remember_checkpoint(checkpoint).await
    }

    async fn remember_checkpoint(&self, checkpoint: crate::audit::Checkpoint) -> Result<(), Error> {
        let Some(settings) = &self.options.audit else {
            return Ok(());
        };
        let mark = AuditMark {
            sequence: checkpoint.seq,
            record_hash: checkpoint.hash.to_vec(),
        };
        self.store.set_audit_mark(&settings.log_name, &mark).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn peer_text_is_what_display_writes(octets in any::<[u8; 4]>(), port in any::<u16>(), v6 in any::<[u8; 16]>()) {
            let v4 = SocketAddr::from((octets, port));
            prop_assert_eq!(peer_text(v4), v4.to_string());
            let v6 = SocketAddr::from((std::net::Ipv6Addr::from(v6), port));
            prop_assert_eq!(peer_text(v6), v6.to_string());
        }
    }
}
