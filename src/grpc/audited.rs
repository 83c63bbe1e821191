//! Every call goes through [`audited`]: it names the caller, gives the call
//! a request id, runs the handler, and writes the audit record before the
//! response leaves. A call whose record cannot be written is refused with
//! UNAVAILABLE (fail closed).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

use super::caller_identity;
use crate::identity::Identity;
use crate::model::Rpc;
use crate::service::allowances;
use crate::service::{
    AuditedContext, BatchInput, ItemRecord, RequestRecord, Service, context_too_large,
    context_within_limits,
};

/// The metadata key carrying the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id accepted from a client.
const MAX_REQUEST_ID: usize = 128;

/// What a call is about, taken from its request before the handler runs.
#[derive(Debug, Default)]
pub(crate) struct Subject {
    pub key_id: Option<String>,
    pub context: Option<AuditedContext>,
    /// The context is over the limits: the call is refused before
    /// anything else.
    pub context_too_large: bool,
    /// Anything else the record must show (never secret).
    pub detail: Option<String>,
}

impl Subject {
    /// A call on `key_id` with no context.
    pub fn key(key_id: &str) -> Self {
        Self {
            key_id: Some(key_id.to_owned()),
            ..Self::default()
        }
    }

    /// A call on no key, described by `detail` in its record.
    pub fn detail(detail: String) -> Self {
        Self {
            detail: Some(detail),
            ..Self::default()
        }
    }

    /// A call on `key_id` with an encryption context: checked against the
    /// limits first, then digested (as one digest when over them).
    pub fn key_with_context(
        service: &Service,
        key_id: &str,
        context: &HashMap<String, String>,
    ) -> Self {
        let pairs = context.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Self {
            key_id: Some(key_id.to_owned()),
            context: service.audit_context(context),
            context_too_large: !context_within_limits(context.len(), pairs),
            detail: None,
        }
    }
}

/// What a handler answered: the response, and the key and version it
/// used, which go into the call's audit record.
pub(crate) struct Answer<T> {
    /// The response.
    pub response: T,
    /// The key version the call used, if any.
    pub key_version: Option<u32>,
    /// The key the call used, if any (recorded as `resolved_key_id` when
    /// the caller named it by an alias).
    pub used_key_id: Option<String>,
}

impl<T> Answer<T> {
    /// A response that used no key version.
    pub fn new(response: T) -> Self {
        Self {
            response,
            key_version: None,
            used_key_id: None,
        }
    }

    /// The same answer, recording that the call used `version`.
    pub fn with_key_version(self, version: u32) -> Self {
        Self {
            key_version: Some(version),
            ..self
        }
    }

    /// The same answer, recording that the call used `version` of the key
    /// `key_id` (which the caller may have named by an alias).
    pub fn with_key(self, key_id: &str, version: u32) -> Self {
        Self {
            key_version: Some(version),
            used_key_id: Some(key_id.to_owned()),
            ..self
        }
    }
}

/// What allowed a call, for its record: the distinct allowances, `; `
/// between them (`None` when nothing was authorized).
fn joined(allowances: Vec<String>) -> Option<String> {
    (!allowances.is_empty()).then(|| allowances.join("; "))
}

/// The key an alias resolved to, for the record: `used` when it differs
/// from the id the caller `named`.
fn resolved(named: Option<&str>, used: Option<String>) -> Option<String> {
    used.filter(|used| named != Some(used.as_str()))
}

/// What a handler produced: its answer or its refusal.
pub(crate) type Handled<T> = Result<Answer<T>, Status>;

/// What a batch handler produced: the response and each item's outcome,
/// in request order.
pub(crate) struct BatchAnswer<T> {
    /// The response.
    pub response: T,
    /// Each item's outcome.
    pub outcomes: Vec<ItemOutcome>,
}

/// The client's request id if it sent a sensible one, else a new one.
fn request_id(metadata: &MetadataMap) -> String {
    let given = metadata
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(id) => id.to_owned(),
        None => new_request_id(),
    }
}

/// A random per-process prefix and a counter: unique without a system
/// call per request.
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        tresor_crypto::random_bytes(6)
            .map(|bytes| hex::encode(bytes.expose()))
            .unwrap_or_else(|_| format!("{:012x}", std::process::id()))
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The counter in hex without leading zeros, as `{:x}` writes it, but
    // without the formatting machinery (see docs/BENCHMARKS.md, "Figures
    // behind design choices").
    let mut digits = [b'0'; 16];
    let digits = match hex::encode_to_slice(count.to_be_bytes(), &mut digits) {
        Ok(()) => std::str::from_utf8(&digits).unwrap_or("0"),
        Err(_) => "0",
    };
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut id = String::with_capacity(prefix.len() + 1 + digits.len());
    id.push_str(prefix);
    id.push('-');
    id.push_str(digits);
    id
}

/// The gRPC name of a status code, as written in audit records.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Adds the request id to a response. It is marked sensitive so that HPACK
/// sends it as a literal "never indexed": an id is unique to its response,
/// and indexing it would only churn both peers' header tables (evicting
/// the headers every response repeats) for nothing.
fn tag_request_id(metadata: &mut MetadataMap, request_id: &str) {
    if let Ok(mut value) = MetadataValue::try_from(request_id) {
        value.set_sensitive(true);
        metadata.insert(REQUEST_ID_HEADER, value);
    }
}

/// Runs `handle` for the caller of `request` and records the call.
pub(crate) async fn audited<Req, Resp, Fut>(
    service: &Service,
    rpc: Rpc,
    request: Request<Req>,
    subject: impl FnOnce(&Req) -> Subject,
    handle: impl FnOnce(Identity, Req) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Fut: Future<Output = Handled<Resp>>,
{
    audited_scrubbing(service, rpc, request, subject, drop, handle).await
}

/// [`audited`] for a request holding a secret: `scrub` gets the request
/// when the call is refused before `handle` runs (no identity, rate
/// limit), so the secret is wiped there too.
pub(crate) async fn audited_scrubbing<Req, Resp, Fut>(
    service: &Service,
    rpc: Rpc,
    request: Request<Req>,
    subject: impl FnOnce(&Req) -> Subject,
    scrub: impl FnOnce(Req),
    handle: impl FnOnce(Identity, Req) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Fut: Future<Output = Handled<Resp>>,
{
    let handle = |identity, req| async move { (handle(identity, req).await, None) };
    audited_with_detail(service, rpc, request, subject, scrub, handle).await
}

/// [`audited_scrubbing`] for a handler that also says, in its record's
/// `detail`, what the call did (never a secret): for example an Unseal
/// approval's progress.
pub(crate) async fn audited_with_detail<Req, Resp, Fut>(
    service: &Service,
    rpc: Rpc,
    request: Request<Req>,
    subject: impl FnOnce(&Req) -> Subject,
    scrub: impl FnOnce(Req),
    handle: impl FnOnce(Identity, Req) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Fut: Future<Output = (Handled<Resp>, Option<String>)>,
{
    let call = Call::begin(rpc, &request);
    let req = request.into_inner();
    let subject = subject(&req);
    // A context over the limits is refused before admission or any other
    // work, and recorded as one digest (issue 18: ~380k tiny pairs cost
    // ~380k HMACs and a 33 MB record even when refused).
    let admitted = if subject.context_too_large {
        Err(Status::from(context_too_large()))
    } else {
        call.admit(service, 1).await
    };
    let admitted = match admitted {
        Ok(identity) => call
            .write_intent(service, &identity, &subject)
            .await
            .map(|()| identity),
        Err(refused) => Err(refused),
    };
    let ((outcome, detail), notes) = match admitted {
        Ok(identity) => {
            call.run(allowances::collecting(handle(identity, req)))
                .await
        }
        Err(refused) => {
            scrub(req);
            ((Err(refused), None), Default::default())
        }
    };
    let (outcome, key_version, used_key_id) = match outcome {
        Ok(answer) => (Ok(answer.response), answer.key_version, answer.used_key_id),
        Err(status) => (Err(status), None, None),
    };
    let resolved_key_id = resolved(subject.key_id.as_deref(), used_key_id);
    let mut record = call.record(subject, key_version, None, &outcome);
    record.resolved_key_id = resolved_key_id;
    record.allowed_by = joined(notes.allowed_by);
    record.closest_grant = joined(notes.closest_denied);
    if detail.is_some() {
        record.detail = detail;
    }
    call.finish(service, record, Vec::new(), outcome).await
}

/// One item's outcome in a batch: the key and version used, or its status.
pub(crate) type ItemOutcome = Result<(String, u32), Code>;

/// One item of a batch request.
pub(crate) trait BatchItemRequest {
    /// The key id as given.
    fn key_id(&self) -> &str;
    /// The encryption context as given.
    fn context(&self) -> &HashMap<String, String>;
    /// The item as the service takes it (its context moved out), or why
    /// its key id is invalid.
    fn input(&mut self) -> BatchInput<'_>;
    /// Wipes its data (a plaintext is secret).
    fn scrub(&mut self);
}

/// A batch request: its items, in order.
pub(crate) trait BatchRequest {
    /// The kind of item.
    type Item: BatchItemRequest;
    /// The items.
    fn items(&mut self) -> &mut [Self::Item];
}

/// [`audited_scrubbing`] for a batch call: admits it as its number of
/// items, then records the call with, when `handle` processed the items,
/// each item's key, context digest and outcome.
pub(crate) async fn audited_batch<Req, Resp, Fut>(
    service: &Service,
    rpc: Rpc,
    request: Request<Req>,
    handle: impl FnOnce(Identity, Req) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Req: BatchRequest,
    Fut: Future<Output = Result<BatchAnswer<Resp>, Status>>,
{
    let call = Call::begin(rpc, &request);
    let mut req = request.into_inner();
    let count = req.items().len();
    let (outcome, items, notes) = match call.admit(service, count).await {
        Ok(identity) => {
            let subjects: Vec<Subject> = req
                .items()
                .iter()
                .map(|item| Subject::key_with_context(service, item.key_id(), item.context()))
                .collect();
            let (handled, notes) = call
                .run(allowances::collecting(handle(identity, req)))
                .await;
            match handled {
                Ok(answer) => (
                    Ok(answer.response),
                    item_records(subjects, answer.outcomes),
                    notes,
                ),
                Err(status) => (Err(status), Vec::new(), notes),
            }
        }
        Err(refused) => {
            req.items().iter_mut().for_each(BatchItemRequest::scrub);
            (Err(refused), Vec::new(), Default::default())
        }
    };
    let items_count = Some(u32::try_from(count).unwrap_or(u32::MAX));
    let mut record = call.record(Subject::default(), None, items_count, &outcome);
    record.allowed_by = joined(notes.allowed_by);
    record.closest_grant = joined(notes.closest_denied);
    call.finish(service, record, items, outcome).await
}

fn item_records(subjects: Vec<Subject>, outcomes: Vec<ItemOutcome>) -> Vec<ItemRecord> {
    subjects
        .into_iter()
        .zip(outcomes)
        .map(|(subject, outcome)| {
            let (used_key_id, key_version, status) = match outcome {
                Ok((key_id, version)) => (Some(key_id), Some(version), Code::Ok),
                Err(code) => (None, None, code),
            };
            ItemRecord {
                resolved_key_id: resolved(subject.key_id.as_deref(), used_key_id),
                key_id: subject.key_id.unwrap_or_default(),
                key_version,
                context: subject.context,
                status: code_name(status),
            }
        })
        .collect()
}

/// A call from its arrival to its answer.
struct Call {
    rpc: Rpc,
    started: Instant,
    request_id: String,
    span: tracing::Span,
    /// The call's exported span, when it is traced.
    trace: Option<crate::telemetry::CallSpan>,
    peer: Option<std::net::SocketAddr>,
    identity: Result<Identity, Status>,
}

impl Call {
    fn begin<Req>(rpc: Rpc, request: &Request<Req>) -> Self {
        let request_id = request_id(request.metadata());
        // The span log lines of the call are written in; the exporter
        // never takes it (a traced call records its own, `trace`).
        let span = tracing::info_span!(
            crate::telemetry::CALL_SPAN,
            request_id = %request_id,
            operation = rpc.name(),
            identity = tracing::field::Empty,
            key_id = tracing::field::Empty,
        );
        let trace = crate::telemetry::CallSpan::begin(request.metadata(), rpc.full_name()).map(
            |mut trace| {
                trace.set("request_id", Arc::<str>::from(request_id.as_str()));
                trace.set("operation", rpc.name());
                trace
            },
        );
        Self {
            rpc,
            started: Instant::now(),
            span,
            trace,
            request_id,
            peer: request.remote_addr(),
            identity: caller_identity(request),
        }
    }

    /// Runs the call's work in its log span and, when the call is traced,
    /// as the task's traced call. The work is boxed first: a handler's
    /// future is kilobytes, and every wrapper would otherwise copy it.
    fn run<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        let work = Box::pin(work).instrument(self.span.clone());
        crate::telemetry::around(self.trace.as_ref(), work)
    }

    /// The caller, if it has an identity and the service admits a call of
    /// `items` items from it.
    async fn admit(&self, service: &Service, items: usize) -> Result<Identity, Status> {
        let identity = self.identity.clone()?;
        service.admit(&identity, self.rpc, items).await?;
        Ok(identity)
    }

    /// Writes the call's intent record (state-changing control-plane
    /// calls only) before the handler runs; a failure refuses the call.
    async fn write_intent(
        &self,
        service: &Service,
        identity: &Identity,
        subject: &Subject,
    ) -> Result<(), Status> {
        service
            .record_intent(crate::service::Intent {
                operation: self.rpc,
                request_id: &self.request_id,
                identity,
                peer: self.peer,
                key_id: subject.key_id.as_deref(),
                detail: subject.detail.as_deref(),
            })
            .await
            .map_err(Status::from)
    }

    fn record<T>(
        &self,
        subject: Subject,
        key_version: Option<u32>,
        items: Option<u32>,
        outcome: &Result<T, Status>,
    ) -> RequestRecord {
        let status = match outcome {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        RequestRecord {
            operation: self.rpc,
            request_id: self.request_id.clone(),
            identity: self.identity.as_ref().ok().cloned(),
            peer: self.peer,
            key_id: subject.key_id,
            resolved_key_id: None,
            allowed_by: None,
            closest_grant: None,
            key_version,
            items,
            context: subject.context,
            status: code_name(status),
            latency: self.started.elapsed(),
            detail: subject.detail,
        }
    }

    /// Puts what the audit record says of the call on its exported span:
    /// identity, key, version, status code and reason; never context
    /// values.
    fn describe_span<Resp>(
        trace: &mut crate::telemetry::CallSpan,
        record: &RequestRecord,
        outcome: &Result<Resp, Status>,
    ) {
        if let Some(identity) = &record.identity {
            trace.set("identity", Arc::<str>::from(identity.as_str()));
        }
        if let Some(key_id) = &record.key_id {
            trace.set("key_id", Arc::<str>::from(key_id.as_str()));
        }
        if let Some(version) = record.key_version {
            trace.set("key_version", i64::from(version));
        }
        let code = match outcome {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        trace.set(crate::telemetry::STATUS_CODE, code as i64);
        if let Err(status) = outcome
            && let Some(reason) = status.metadata().get(tresor_proto::REASON_HEADER)
            && let Ok(reason) = reason.to_str()
        {
            trace.set("reason", Arc::<str>::from(reason));
        }
    }

    /// Writes the records, then answers: the response, or the refusal when
    /// a record cannot be written; tagged with the request id either way.
    async fn finish<Resp>(
        self,
        service: &Service,
        record: RequestRecord,
        items: Vec<ItemRecord>,
        outcome: Result<Resp, Status>,
    ) -> Result<Response<Resp>, Status> {
        // For the log line below (nothing when no log line wants the span).
        if let Some(identity) = &record.identity {
            self.span.record("identity", identity.as_str());
        }
        if let Some(key_id) = &record.key_id {
            self.span.record("key_id", key_id.as_str());
        }
        let mut trace = self.trace;
        if let Some(trace) = &mut trace {
            Self::describe_span(trace, &record, &outcome);
        }
        let _entered = self.span.enter();
        tracing::debug!(
            status = record.status,
            latency_us = record.latency.as_micros() as u64,
            "call handled"
        );
        drop(_entered);
        let audit_write = trace.as_ref().map(|trace| trace.child("audit.write"));
        let recorded = service
            .record_request(record, items)
            .instrument(self.span.clone())
            .await;
        drop(audit_write);
        if let Some(trace) = trace {
            trace.end();
        }
        let result = match recorded {
            Ok(()) => outcome.map(Response::new),
            Err(e) => Err(Status::from(e)),
        };
        match result {
            Ok(mut response) => {
                tag_request_id(response.metadata_mut(), &self.request_id);
                Ok(response)
            }
            Err(mut status) => {
                tag_request_id(status.metadata_mut(), &self.request_id);
                Err(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_is_tagged_as_a_never_indexed_header() {
        let mut metadata = MetadataMap::new();
        tag_request_id(&mut metadata, "abc-1");
        let value = metadata.get(REQUEST_ID_HEADER).expect("tagged");
        assert_eq!(value.to_str().expect("ascii"), "abc-1");
        assert!(value.is_sensitive());
    }

    #[test]
    fn a_sensible_client_request_id_is_kept_and_others_are_replaced() {
        let mut metadata = MetadataMap::new();
        metadata.insert(REQUEST_ID_HEADER, "client-7.a:b_c".parse().expect("value"));
        assert_eq!(request_id(&metadata), "client-7.a:b_c");
        metadata.insert(REQUEST_ID_HEADER, "has space".parse().expect("value"));
        let generated = request_id(&metadata);
        assert_ne!(generated, "has space");
        assert_ne!(request_id(&metadata), generated, "each generated id is new");
    }

    #[test]
    fn generated_request_ids_are_a_prefix_and_a_hex_counter() {
        let ids: Vec<String> = (0..40).map(|_| new_request_id()).collect();
        let (prefix, _) = ids[0].split_once('-').expect("prefix-counter");
        assert_eq!(prefix.len(), 12);
        let mut counts = Vec::new();
        for id in &ids {
            let (p, count) = id.split_once('-').expect("prefix-counter");
            assert_eq!(p, prefix);
            assert!(!count.starts_with('0') || count == "0", "{id}");
            counts.push(u64::from_str_radix(count, 16).expect("hex"));
        }
        // Other tests may draw ids meanwhile: increasing, not consecutive.
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    }
}
