//! The bench echo service (`tresor.bench.v1.Echo`): returns the request's
//! payload and does nothing else. It is the baseline of `tresor bench
//! --compare-echo`: served with tresor's own transport (the `tresor`
//! crate's `server::echo`), it costs what gRPC over mTLS costs.

use tonic::{Request, Response, Status};

use crate::proto::echo_server::{Echo, EchoServer};
use crate::proto::{EchoRequest, EchoResponse};

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

/// The echo service with messages of up to `max_message_bytes` each way,
/// ready to add to a tonic server.
pub fn echo_server(max_message_bytes: usize) -> EchoServer<EchoApi> {
    EchoServer::new(EchoApi)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}
