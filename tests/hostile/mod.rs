//! Tools of a hostile client: raw TLS connections (with or without a
//! client certificate), hand-made HTTP/2 frames, gRPC calls with arbitrary
//! bodies over the `h2` crate, and the server's resident memory.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tresor::pki::CertifiedKey;

/// The HTTP/2 connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2 frame types used here.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;
pub const RST_STREAM: u8 = 0x3;
/// HTTP/2 frame flags.
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Longest the test waits for the server to do something it must do.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A TLS client trusting `ca_pem`, offering `h2`, presenting `cert` if any.
pub fn tls_connector(ca_pem: &str, cert: Option<&CertifiedKey>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match cert {
        Some(cert) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client certificate"),
                PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("client key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to the server at `port` (its certificate names
/// localhost).
pub async fn tls_connect(
    connector: &TlsConnector,
    port: u16,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    connector.connect(name, tcp).await
}

/// One HTTP/2 frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame length");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The preface and an empty SETTINGS frame: a valid start of a connection.
pub fn client_start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out
}

/// An HPACK literal header field without indexing, new name.
pub fn hpack_literal(name: &str, value_len: usize) -> Vec<u8> {
    let mut out = vec![0x00];
    hpack_int(&mut out, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(&mut out, 7, value_len);
    out.extend(std::iter::repeat_n(b'a', value_len));
    out
}

/// HPACK integer with an `prefix`-bit prefix (the first byte's high bits
/// are 0: no Huffman coding).
fn hpack_int(out: &mut Vec<u8>, prefix: u32, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(value as u8);
        return;
    }
    out.push(max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A frame the server sent: (type, stream, payload).
pub type Frame = (u8, u32, Vec<u8>);

/// The whole frames in `bytes` (a partial last frame is ignored).
pub fn parse_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        if bytes.len() < 9 + len {
            break;
        }
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        frames.push((bytes[3], stream, bytes[9..9 + len].to_vec()));
        bytes = &bytes[9 + len..];
    }
    frames
}

/// The error code of the first GOAWAY in `frames`, if any.
pub fn goaway_code(frames: &[Frame]) -> Option<u32> {
    frames
        .iter()
        .find(|(kind, _, payload)| *kind == GOAWAY && payload.len() >= 8)
        .map(|(_, _, p)| u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
}

/// Reads until the server closes the connection (end of stream or an
/// error); panics if it has not within [`PATIENCE`]. Returns what was read.
pub async fn read_until_closed(io: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server must close the connection");
    received
}

/// Writes `bytes`; false if the server already closed the connection.
pub async fn write_or_closed(io: &mut (impl tokio::io::AsyncWrite + Unpin), bytes: &[u8]) -> bool {
    io.write_all(bytes).await.is_ok() && io.flush().await.is_ok()
}

/// What a gRPC call with a hand-made body got back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    /// A gRPC status: code and message (as sent, percent-encoded).
    Status(u32, String),
    /// The stream was reset with this HTTP/2 error code.
    Reset(u32),
    /// A non-200 HTTP status.
    Http(u16),
}

/// An HTTP/2 client connection over mutual TLS, driven in the background.
pub async fn h2_connect(connector: &TlsConnector, port: u16) -> h2::client::SendRequest<Bytes> {
    let tls = tls_connect(connector, port).await.expect("mTLS connect");
    let (send, connection) = h2::client::handshake(tls).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// Calls the gRPC method `path` with `body` as the raw request body
/// (length prefix included) and returns what came back.
pub async fn grpc_raw(send: &h2::client::SendRequest<Bytes>, path: &str, body: Bytes) -> Answer {
    let mut send = send.clone().ready().await.expect("connection usable");
    let request = http::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let (response, mut stream) = send.send_request(request, false).expect("send request");
    // The server may answer (and reset) before the body is sent.
    let _ = stream.send_data(body, true);
    let response = match response.await {
        Ok(response) => response,
        Err(e) => return Answer::Reset(e.reason().map_or(u32::MAX, u32::from)),
    };
    if response.status() != http::StatusCode::OK {
        return Answer::Http(response.status().as_u16());
    }
    if let Some(answer) = grpc_status(response.headers()) {
        return answer;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Err(e) => return Answer::Reset(e.reason().map_or(u32::MAX, u32::from)),
        }
    }
    match body.trailers().await {
        Ok(Some(trailers)) => grpc_status(&trailers).expect("grpc-status in the trailers"),
        Ok(None) => panic!("a gRPC answer without grpc-status"),
        Err(e) => Answer::Reset(e.reason().map_or(u32::MAX, u32::from)),
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Answer> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
        .unwrap_or_default();
    Some(Answer::Status(code, message))
}

/// A gRPC message frame: compression flag, declared length, bytes.
pub fn grpc_frame(flag: u8, declared: u32, bytes: &[u8]) -> Bytes {
    let mut out = vec![flag];
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(bytes);
    Bytes::from(out)
}

/// The resident memory of process `pid`, in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("VmRSS")
}

/// Samples a process's VmRSS every 20 ms in a thread, keeping the peak.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// The peak so far, in KiB; resets it to the current value.
    pub fn take_peak(&self, pid: u32) -> u64 {
        self.peak.swap(rss_kib(pid), Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// HTTP/2 SETTINGS parameters MAX_CONCURRENT_STREAMS and
/// MAX_HEADER_LIST_SIZE.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The parameters of the SETTINGS frame the server opens an mTLS HTTP/2
/// connection with.
pub async fn server_settings(connector: &TlsConnector, port: u16) -> Vec<(u16, u32)> {
    let mut tls = tls_connect(connector, port).await.expect("mTLS");
    assert!(write_or_closed(&mut tls, &client_start()).await);
    let mut received = Vec::new();
    let mut buf = vec![0u8; 4096];
    let payload = tokio::time::timeout(PATIENCE, async {
        loop {
            let frames = parse_frames(&received);
            if let Some((_, _, payload)) = frames.into_iter().find(|(kind, _, _)| *kind == SETTINGS)
            {
                return payload;
            }
            let n = tls.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before SETTINGS");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server's SETTINGS");
    payload
        .chunks_exact(6)
        .map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
            )
        })
        .collect()
}
