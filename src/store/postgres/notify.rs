//! Change notifications between replicas sharing a PostgreSQL keystore:
//! every key change is announced on commit with `pg_notify`, and each
//! replica listens on a dedicated connection and forwards what it hears
//! to the service (which drops cached metadata and DEKs of that key).

use std::sync::Weak;

use tokio::sync::broadcast;
use tokio_postgres::NoTls;

use super::db;
use super::tls::DbTls;
use crate::error::StoreError;
use crate::model::KeyId;
use crate::store::KeyChange;

/// The channel replicas notify on commit of a key change.
const CHANGES_CHANNEL: &str = "tresor_key_changed";
/// Payload meaning "anything may have changed".
pub(super) const EVERYTHING: &str = "*";

/// Notifies other replicas, on commit, that `payload` (a key id) changed.
pub(super) async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    payload: &str,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANGES_CHANNEL, &payload])
        .await
        .map_err(db)?;
    Ok(())
}

/// Drives a listening connection, forwarding notification payloads.
fn forward<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    payloads: tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message
                && payloads.send(note.payload().to_owned()).is_err()
            {
                return;
            }
        }
    })
}

/// Listens for change notifications on a dedicated connection and
/// forwards them, reconnecting after failures (announcing `All`, since
/// notifications may have been missed), until the store is dropped.
pub(super) fn spawn_listener(
    config: tokio_postgres::Config,
    tls: DbTls,
    changes: Weak<broadcast::Sender<KeyChange>>,
) {
    tokio::spawn(async move {
        loop {
            if changes.upgrade().is_none() {
                return;
            }
            let (payloads, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
            let connected = match &tls {
                DbTls::Off => config
                    .connect(NoTls)
                    .await
                    .map(|(client, connection)| (client, forward(connection, payloads))),
                DbTls::Verified(tls) => config
                    .connect(tls.clone())
                    .await
                    .map(|(client, connection)| (client, forward(connection, payloads))),
            };
            if let Ok((client, driver)) = connected {
                if client
                    .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
                    .await
                    .is_ok()
                {
                    let Some(sender) = changes.upgrade() else {
                        driver.abort();
                        return;
                    };
                    let _ = sender.send(KeyChange::All);
                    drop(sender);
                    while let Some(payload) = received.recv().await {
                        let Some(sender) = changes.upgrade() else {
                            driver.abort();
                            return;
                        };
                        let change = if payload == EVERYTHING {
                            KeyChange::All
                        } else {
                            KeyId::parse(&payload).map_or(KeyChange::All, KeyChange::Key)
                        };
                        let _ = sender.send(change);
                    }
                }
                driver.abort();
            }
            if let Some(sender) = changes.upgrade() {
                let _ = sender.send(KeyChange::All);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
}
