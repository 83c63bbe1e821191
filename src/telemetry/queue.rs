//! The span queue between requests and the exporter: bounded, and it never
//! makes a request wait. A full queue drops the span and counts it
//! ([`dropped_spans`], the metric `tresor_trace_spans_dropped_total`), which
//! the SDK's batch processor does too but keeps to itself. A thread of its
//! own takes spans off the queue and exports them in batches on the
//! exporter's runtime, when a batch is full or the schedule delay passed.
//! Sizes and delays come from the standard `OTEL_BSP_*` variables.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans dropped because the export queue was full, since the process started.
pub fn dropped_spans() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The queue's sizes and delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Spans held at most (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue_size: usize,
    /// Spans per export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_export_batch_size: usize,
    /// Longest wait before a partial batch is exported (`OTEL_BSP_SCHEDULE_DELAY`, ms, default 5000).
    pub schedule_delay: Duration,
    /// Longest an export may take (`OTEL_BSP_EXPORT_TIMEOUT`, ms, default 30000).
    pub export_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_millis(5_000),
            export_timeout: Duration::from_millis(30_000),
        }
    }
}

impl QueueConfig {
    /// The defaults with the `OTEL_BSP_*` variables that are set; a value
    /// that is not a positive integer is an error.
    pub fn from_env() -> Result<Self, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{name}={text:?}: give a positive integer")),
            }
        };
        let mut config = Self::default();
        if let Some(n) = number("OTEL_BSP_MAX_QUEUE_SIZE")? {
            config.max_queue_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? {
            config.max_export_batch_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY")? {
            config.schedule_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = number("OTEL_BSP_EXPORT_TIMEOUT")? {
            config.export_timeout = Duration::from_millis(ms);
        }
        config.max_export_batch_size = config.max_export_batch_size.min(config.max_queue_size);
        Ok(config)
    }
}

/// What requests and the export thread share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the export thread: a batch is full, or a flush or shutdown.
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    spans: Vec<SpanData>,
    /// Flushes asked for: each is answered once what was queued before it
    /// is exported.
    flushes: Vec<SyncSender<OTelSdkResult>>,
    shutdown: Option<SyncSender<OTelSdkResult>>,
    stopped: bool,
}

/// The span processor: a bounded queue and the thread that exports it.
/// Requests append under a mutex held for a push; the export thread is
/// woken only when a batch is full (not per span, which would cost a
/// context switch per span).
#[derive(Debug)]
pub struct QueueProcessor {
    shared: Arc<Shared>,
    config: QueueConfig,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl QueueProcessor {
    /// Starts the export thread; exports run on `runtime` (the one the
    /// exporter's connection is bound to).
    pub fn start<E: SpanExporter + 'static>(
        exporter: E,
        config: QueueConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            exporter: Arc::new(exporter),
            said_dropped: false.into(),
            config,
            runtime,
            shared: Arc::clone(&shared),
        };
        let worker = std::thread::Builder::new()
            .name("tresor-span-export".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start the trace export thread: {e}"))?;
        Ok(Self {
            shared,
            config,
            worker: Mutex::new(Some(worker)),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let mut state = self.state();
        if state.stopped {
            return;
        }
        if state.spans.len() >= self.config.max_queue_size {
            // Counted only: logging here would re-enter the subscriber
            // that is closing the span. The export thread says it once.
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.spans.push(span);
        if state.spans.len() == self.config.max_export_batch_size {
            self.shared.wake.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (answer, answered) = sync_channel(1);
        {
            let mut state = self.state();
            if state.stopped {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            state.flushes.push(answer);
        }
        self.shared.wake.notify_one();
        let timeout = self.config.export_timeout;
        answered
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let (answer, answered) = sync_channel(1);
        {
            let mut state = self.state();
            if state.stopped || state.shutdown.is_some() {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            state.shutdown = Some(answer);
        }
        self.shared.wake.notify_one();
        // On a timeout the thread is left to finish its export (it stops
        // right after): shutdown never waits longer than asked.
        let result = answered
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?;
        if let Some(worker) = self.worker.lock().ok().and_then(|mut w| w.take()) {
            let _ = worker.join();
        }
        result
    }
}

/// The export thread's state.
struct Worker<E> {
    exporter: Arc<E>,
    /// Whether the first drop was logged.
    said_dropped: std::sync::atomic::AtomicBool,
    config: QueueConfig,
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
}

impl<E: SpanExporter + 'static> Worker<E> {
    fn run(self) {
        loop {
            let (spans, flushes, shutdown) = {
                let state = self
                    .shared
                    .state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (mut state, _) = self
                    .shared
                    .wake
                    .wait_timeout_while(state, self.config.schedule_delay, |state| {
                        state.spans.len() < self.config.max_export_batch_size
                            && state.flushes.is_empty()
                            && state.shutdown.is_none()
                    })
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let shutdown = state.shutdown.take();
                state.stopped = shutdown.is_some();
                let take = if shutdown.is_some() || !state.flushes.is_empty() {
                    state.spans.len()
                } else {
                    state.spans.len().min(self.config.max_export_batch_size)
                };
                let spans: Vec<SpanData> = state.spans.drain(..take).collect();
                (spans, std::mem::take(&mut state.flushes), shutdown)
            };
            let mut exported = Ok(());
            let mut spans = spans;
            while !spans.is_empty() {
                let rest = spans.split_off(spans.len().min(self.config.max_export_batch_size));
                exported = exported.and(self.export(spans));
                spans = rest;
            }
            for flush in flushes {
                let copy = exported
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| OTelSdkError::InternalFailure(e.to_string()));
                let _ = flush.send(copy);
            }
            if let Some(answer) = shutdown {
                let stopped = self.exporter.shutdown();
                let _ = answer.send(exported.and(stopped));
                return;
            }
        }
    }

    /// Exports one batch, within the export timeout.
    fn export(&self, spans: Vec<SpanData>) -> OTelSdkResult {
        if spans.is_empty() {
            return Ok(());
        }
        let exporter = Arc::clone(&self.exporter);
        let timeout = self.config.export_timeout;
        let result = self.runtime.block_on(async move {
            match tokio::time::timeout(timeout, exporter.export(spans)).await {
                Ok(result) => result,
                Err(_) => Err(OTelSdkError::Timeout(timeout)),
            }
        });
        if let Err(e) = &result {
            tracing::debug!(error = %e, "a trace export failed");
        }
        if dropped_spans() > 0 && !self.said_dropped.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the trace export queue was full: spans were dropped (counted in tresor_trace_spans_dropped_total)"
            );
        }
        result
    }
}
