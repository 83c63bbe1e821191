//! The `SpiffeWorkloadAPI` gRPC service as a SPIRE agent answers it.
//!
//! - Every call must carry the metadata entry `workload.spiffe.io: true`
//!   (exactly one value); otherwise it is refused with `INVALID_ARGUMENT`,
//!   "security header missing from request", SPIRE's status and wording,
//!   before the method runs ([`require_security_header`]).
//! - `FetchX509SVID` and `FetchX509Bundles` stream: the current [`Material`]
//!   at once, then again whenever it changes (a watch channel, so a slow
//!   reader skips to the latest, as an agent's subscribers do). A message
//!   equal to the one sent before is not repeated. Both streams end when
//!   the server shuts down.
//! - The JWT methods answer `UNIMPLEMENTED` (the generated default bodies).

use std::sync::Arc;

use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::WatchStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::proto::{X509BundlesRequest, X509BundlesResponse, X509svidRequest, X509svidResponse};

/// The metadata key a Workload API client must send, with the value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// What the server hands out at one moment: both streaming responses,
/// built together so they never disagree.
#[derive(Debug, PartialEq)]
pub(crate) struct Material {
    /// Sent on `FetchX509SVID`.
    pub(crate) svid: X509svidResponse,
    /// Sent on `FetchX509Bundles`.
    pub(crate) bundles: X509BundlesResponse,
}

/// The published material; `None` once the server is shutting down, which
/// ends every open stream.
pub(crate) type Published = Option<Arc<Material>>;

/// The service: reads whatever [`crate::WorkloadApi`] last published.
#[derive(Debug)]
pub(crate) struct WorkloadService {
    published: watch::Receiver<Published>,
}

impl WorkloadService {
    pub(crate) const fn new(published: watch::Receiver<Published>) -> Self {
        Self { published }
    }

    /// The current material, then each change, as `pick` extracts one
    /// response from it, skipping a response equal to the previous one.
    fn stream<T>(&self, pick: fn(&Material) -> &T) -> BoxStream<T>
    where
        T: Clone + PartialEq + Send + Sync + 'static,
    {
        let mut last: Option<T> = None;
        let updates = WatchStream::new(self.published.clone())
            .map_while(|published| published)
            .filter_map(move |material| {
                let next = pick(&material);
                if last.as_ref() == Some(next) {
                    return None;
                }
                last = Some(next.clone());
                Some(Ok(next.clone()))
            });
        Box::pin(updates)
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadService {
    async fn fetch_x509svid(
        &self,
        _request: Request<X509svidRequest>,
    ) -> Result<Response<BoxStream<X509svidResponse>>, Status> {
        Ok(Response::new(self.stream(|material| &material.svid)))
    }

    async fn fetch_x509_bundles(
        &self,
        _request: Request<X509BundlesRequest>,
    ) -> Result<Response<BoxStream<X509BundlesResponse>>, Status> {
        Ok(Response::new(self.stream(|material| &material.bundles)))
    }
}

/// Refuses a call without exactly one `workload.spiffe.io: true` entry, as
/// SPIRE's agent does (its check: one value, equal to `true`).
///
/// # Errors
///
/// `INVALID_ARGUMENT`, "security header missing from request".
pub(crate) fn require_security_header(request: Request<()>) -> Result<Request<()>, Status> {
    let mut values = request.metadata().get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if value == "true" => Ok(request),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}
