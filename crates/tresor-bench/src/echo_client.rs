//! A client of the bench echo service (`tresor.bench.v1.Echo`), the
//! baseline of `tresor bench --compare-echo`. Not part of tresor's API.

use std::collections::HashMap;

use tresor_client::{ClientBuilder, ClientError, RawChannel};

use crate::proto::{EchoRequest, echo_client::EchoClient as RawEchoClient};

/// A connection to an echo server, with exactly the channel settings of a
/// tresor client. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct EchoClient {
    raw: RawChannel,
}

impl EchoClient {
    /// Connects with `builder`'s settings (endpoint, CA, identity,
    /// timeouts), as [`ClientBuilder::build`] would connect to tresor.
    pub async fn connect(builder: ClientBuilder) -> Result<Self, ClientError> {
        Ok(Self {
            raw: builder.build_raw().await?,
        })
    }

    /// Sends a request shaped like an Encrypt request and returns the
    /// echoed payload. Copies its arguments into the request as
    /// `Client::encrypt` does, so the client-side cost matches too.
    pub async fn echo(
        &self,
        key_id: &str,
        payload: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<Vec<u8>, ClientError> {
        let request = EchoRequest {
            key_id: key_id.to_owned(),
            payload: payload.to_vec(),
            context: context.clone(),
        };
        // A client per call over the shared channel, as `Client::encrypt`
        // clones its own.
        let mut echo = RawEchoClient::new(self.raw.channel());
        echo.echo(request)
            .await
            .map(|response| response.into_inner().payload)
            .map_err(|status| self.raw.error(status))
    }
}
