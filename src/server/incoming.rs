//! The accept loop of a gRPC listener: at most `max_connections` client
//! connections are open at once, each with TCP_NODELAY and an idle guard.
//!
//! At the cap the loop stops accepting until a connection closes: further
//! clients wait in the kernel's accept queue (first come, first served)
//! instead of being refused. A connection that never finishes its TLS
//! handshake frees its slot after the handshake timeout (tonic runs each
//! handshake in its own task with its own deadline), and one that sends
//! nothing for the idle timeout frees it then, so silent connections cannot
//! hold the slots for long.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::tls::LiveTls;
use crate::config::TransportLimits;

/// Pause after an accept error such as "too many open files", so the loop
/// does not spin while no descriptor is free.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The connections `listener` accepts, at most `limits.max_connections`
/// open at once. The listener closes when the stream is dropped (tonic
/// drops it at shutdown).
pub fn incoming(
    listener: TcpListener,
    limits: &TransportLimits,
) -> impl tokio_stream::Stream<Item = io::Result<Connection>> + use<> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.get()));
    let idle_timeout = limits.idle_timeout;
    let (accepted, stream) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot,
                () = accepted.closed() => return,
            };
            // The semaphore is never closed, so acquiring cannot fail.
            let Ok(slot) = slot else { return };
            let socket = tokio::select! {
                socket = accept(&listener) => socket,
                () = accepted.closed() => return,
            };
            let connection = Connection::new(socket, slot, idle_timeout);
            if accepted.send(Ok(connection)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(stream)
}

/// Hears how each TLS handshake ended (`ok`, `refused`, `timed_out`).
pub type HandshakeOutcome = Arc<dyn Fn(&'static str) + Send + Sync>;

/// The TLS connections of `listener`: [`incoming`]'s connections, each
/// through a handshake with the configuration current when it was
/// accepted, run in a task of its own (a slow client holds its slot, not
/// the loop) and dropped, freeing the slot, when it fails or outlasts the
/// handshake timeout. `outcome` hears how each handshake ended: `ok`,
/// `refused` or `timed_out`.
pub fn tls_incoming(
    listener: TcpListener,
    limits: &TransportLimits,
    tls: Arc<LiveTls>,
    outcome: HandshakeOutcome,
) -> impl tokio_stream::Stream<Item = io::Result<TlsStream<Connection>>> + use<> {
    let mut connections = Box::pin(incoming(listener, limits));
    let (handshaken, stream) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let connection = tokio::select! {
                next = connections.next() => match next {
                    Some(Ok(connection)) => connection,
                    Some(Err(_)) => continue,
                    None => return,
                },
                () = handshaken.closed() => return,
            };
            let (acceptor, timeout) = (tls.acceptor(), tls.handshake_timeout());
            let (handshaken, outcome) = (handshaken.clone(), outcome.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(timeout, acceptor.accept(connection)).await {
                    Ok(Ok(stream)) => {
                        outcome("ok");
                        let _ = handshaken.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => {
                        outcome("refused");
                        tracing::debug!(error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        outcome("timed_out");
                        tracing::debug!("TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(stream)
}

/// The next connection with TCP_NODELAY set. tonic sets TCP_NODELAY only on
/// sockets it accepts itself, not on an incoming stream; without it small
/// responses wait for the peer's delayed ACK (about 40 ms). Errors are
/// logged and accepting goes on.
async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => match socket.set_nodelay(true) {
                Ok(()) => return socket,
                Err(e) => tracing::debug!(error = %e, "accepted connection lost"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "accept failed (raise the open-files limit if it says too many open files)");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// An accepted client connection. It holds one of the listener's slots
/// until dropped, and fails reads once nothing was read for the idle
/// timeout (then TLS or HTTP/2 closes it).
#[derive(Debug)]
pub struct Connection {
    socket: TcpStream,
    idle: IdleGuard,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    fn new(socket: TcpStream, slot: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        Self {
            socket,
            idle: IdleGuard::new(idle_timeout),
            _slot: slot,
        }
    }
}

/// The idle deadline, checked lazily: reads only note the time, and the
/// timer is re-armed only when it fires early, so the hot path pays one
/// clock read per read.
#[derive(Debug)]
struct IdleGuard {
    timeout: Duration,
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
}

impl IdleGuard {
    fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            timeout,
            last_read: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
        }
    }

    /// Pending while the connection is within its idle timeout (the timer
    /// wakes the task at the deadline); an error once it is past.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let deadline = self.last_read + self.timeout;
            if Instant::now() >= deadline {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                )));
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.socket).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.idle.last_read = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.idle.poll_expired(cx),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}

/// tonic's TCP connection info (addresses), so the TLS layer above still
/// yields the `TlsConnectInfo<TcpConnectInfo>` that carries the client's
/// certificate chain to the handlers.
impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.socket.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    use super::*;

    fn limits(max_connections: usize, idle_timeout: Duration) -> TransportLimits {
        TransportLimits {
            max_connections: NonZeroUsize::new(max_connections).expect("nonzero"),
            idle_timeout,
            ..TransportLimits::default()
        }
    }

    #[tokio::test]
    async fn a_connection_beyond_the_cap_waits_until_one_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut accepted = Box::pin(incoming(listener, &limits(1, Duration::from_secs(600))));

        let _first = TcpStream::connect(addr).await.expect("connect");
        let held = accepted.next().await.expect("first").expect("ok");
        let _second = TcpStream::connect(addr).await.expect("connect");
        // The second waits in the accept queue while the first is open.
        let waiting = tokio::time::timeout(Duration::from_millis(200), accepted.next()).await;
        assert!(waiting.is_err(), "accepted beyond the cap");
        drop(held);
        accepted.next().await.expect("second").expect("ok");
    }

    #[tokio::test]
    async fn a_connection_that_falls_silent_fails_reads_after_the_idle_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut accepted = Box::pin(incoming(listener, &limits(4, Duration::from_millis(300))));

        let mut talker = TcpStream::connect(addr).await.expect("connect");
        let mut server_side = accepted.next().await.expect("conn").expect("ok");
        let mut byte = [0u8; 1];
        talker.write_all(b"x").await.expect("write");
        server_side.read_exact(&mut byte).await.expect("read");
        // Then silence, with the client still connected: the read fails.
        let err = server_side.read(&mut byte).await.expect_err("idle");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(talker);
    }
}
