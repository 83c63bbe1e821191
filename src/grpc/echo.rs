//! The bench echo service (`tresor.bench.v1.Echo`): returns the request's
//! payload and does nothing else. It is the baseline of `tresor bench
//! --compare-echo`: served with tresor's own transport (see
//! `crate::server::echo`), it costs what gRPC over mTLS costs, so tresor's
//! figures divided by its figures show what tresor adds.

use tonic::{Request, Response, Status};

use super::echo_proto::{EchoRequest, EchoResponse, echo_server::Echo};

/// The echo handler. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoApi;

#[tonic::async_trait]
impl Echo for EchoApi {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let EchoRequest { payload, .. } = request.into_inner();
        Ok(Response::new(EchoResponse { payload }))
    }
}
