//! What the SDK examples share: a client from the environment `tresor dev`
//! prints (`TRESOR_ADDR`, `TRESOR_CA`, `TRESOR_CERT`, `TRESOR_KEY`).

use tresor_client::{Client, ClientBuilder};

/// Any error, printed for a human.
pub type BoxError = Box<dyn std::error::Error>;

/// A client from `TRESOR_ADDR`, `TRESOR_CA`, `TRESOR_CERT`, `TRESOR_KEY`,
/// with `configure` applied to the builder (a data-key cache, a retry
/// policy...). `usage` is appended to errors about missing variables.
pub async fn connect(
    usage: &str,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<Client, BoxError> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set; {usage}"));
    let read = |name: &str| -> Result<String, BoxError> {
        let path = var(name)?;
        std::fs::read_to_string(&path).map_err(|e| format!("{name}={path}: {e}").into())
    };
    let builder = Client::builder()
        .endpoint(var("TRESOR_ADDR")?)
        .ca(read("TRESOR_CA")?)
        .identity(read("TRESOR_CERT")?, read("TRESOR_KEY")?);
    Ok(configure(builder).build().await?)
}
