//! Typed client errors: what happened, in words a caller can act on.

use std::error::Error as StdError;
use std::fmt;

use tonic::Code;

use tresor_proto::Reason;

/// Why a connection could not be made, as far as the client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectHint {
    /// Nothing listens at the address.
    ServerNotRunning,
    /// The server's certificate is not signed by the configured CA.
    WrongCa,
    /// The server asked for a client certificate and none was given.
    MissingClientCert,
    /// The server refused the client certificate (issued by another CA?).
    ClientCertRejected,
    /// A certificate (client or server) has expired or is not yet valid.
    CertificateExpired,
    /// The server name does not match the server certificate.
    NameMismatch,
    /// The connection timed out.
    Timeout,
    /// The address could not be resolved.
    BadAddress,
    /// Something else; see the detail.
    Unknown,
}

impl ConnectHint {
    /// What to check, for a human.
    pub fn advice(self) -> &'static str {
        match self {
            Self::ServerNotRunning => {
                "is the server running and listening at this address? (start one with `tresor dev`)"
            }
            Self::WrongCa => {
                "the server's certificate is not signed by the CA given with --ca/TRESOR_CA; use the CA that issued the server certificate"
            }
            Self::MissingClientCert => {
                "the server requires a client certificate: set --cert/--key (TRESOR_CERT/TRESOR_KEY)"
            }
            Self::ClientCertRejected => {
                "the server refused the client certificate: was it issued by the server's client CA (tresor certs issue), and is it still valid?"
            }
            Self::CertificateExpired => {
                "a certificate has expired or is not yet valid: issue a new one with `tresor certs`"
            }
            Self::NameMismatch => {
                "the server certificate does not name the host in --addr/TRESOR_ADDR; use a name or IP it was issued for"
            }
            Self::Timeout => "the server did not answer in time; check the address and the network",
            Self::BadAddress => "the host name in --addr/TRESOR_ADDR does not resolve",
            Self::Unknown => "check --addr, --ca, --cert and --key",
        }
    }

    /// Classifies a transport error from the text of its source chain.
    pub fn classify(detail: &str, had_client_cert: bool) -> Self {
        let text = detail.to_ascii_lowercase();
        let has = |needle: &str| text.contains(needle);
        if has("connection refused") {
            Self::ServerNotRunning
        } else if has("expired") || has("notvalidyet") || has("not valid yet") {
            Self::CertificateExpired
        } else if has("certificaterequired") || has("certificate required") {
            Self::MissingClientCert
        } else if has("unknownissuer") || has("unknown issuer") || has("badsignature") {
            Self::WrongCa
        } else if has("notvalidforname") || has("not valid for name") {
            Self::NameMismatch
        } else if has("unknownca")
            || has("unknown ca")
            || has("badcertificate")
            || has("bad certificate")
            || has("decrypterror")
        {
            Self::ClientCertRejected
        } else if has("broken pipe")
            || has("connection reset")
            || has("connection closed")
            || has("unexpected eof")
            || has("connection was not ready")
        {
            // The server hung up during or right after the handshake: it
            // did not accept what we presented.
            if had_client_cert {
                Self::ClientCertRejected
            } else {
                Self::MissingClientCert
            }
        } else if has("timed out") || has("deadline") {
            Self::Timeout
        } else if has("failed to lookup") || has("dns error") || has("name or service not known") {
            Self::BadAddress
        } else if !had_client_cert {
            Self::MissingClientCert
        } else {
            Self::Unknown
        }
    }
}

/// What went wrong in a client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client was configured wrongly (missing endpoint, unreadable PEM).
    #[error("{0}")]
    Config(String),
    /// No connection: the server is unreachable or TLS failed.
    #[error("cannot connect to {endpoint}: {detail}\nhint: {}", hint.advice())]
    Connect {
        /// Where the client tried to connect.
        endpoint: String,
        /// The likely cause.
        hint: ConnectHint,
        /// The transport's own description.
        detail: String,
    },
    /// The caller may not do this, or the key does not exist (non-admins
    /// are not told which).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The key does not exist (admin calls).
    #[error("not found: {0}")]
    NotFound(String),
    /// The key id is taken.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request was invalid (bad key id, tampered ciphertext, wrong
    /// context, too large).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The key is disabled: an admin must enable it (`tresor key enable`).
    #[error("key is disabled; an admin can enable it (`tresor key enable KEY`)")]
    KeyDisabled,
    /// The key is scheduled for deletion: an admin may cancel the deletion
    /// while its window lasts.
    #[error("key is pending deletion; an admin can cancel it (`tresor key cancel-deletion KEY`)")]
    KeyPendingDeletion,
    /// The ciphertext was made with a key version below the key's minimum
    /// decryption version.
    #[error("{0}")]
    KeyVersionBelowMinimum(String),
    /// The ciphertext was made with a key version that an admin destroyed:
    /// it can never be decrypted again.
    #[error("{0}")]
    KeyVersionDestroyed(String),
    /// The ciphertext is malformed, tampered with, or was made with another
    /// key or encryption context (the server does not say which).
    #[error("invalid ciphertext: malformed, tampered with, or made with another key or context")]
    InvalidCiphertext,
    /// Decrypt was given a wrapped data key from GenerateDataKey: open it
    /// with [`Client::decrypt_data_key`](super::Client::decrypt_data_key).
    #[error(
        "this is a wrapped data key: open it with decrypt_data_key (DecryptDataKey), not decrypt"
    )]
    WrappedDataKey,
    /// The key's record in the server's keystore fails its integrity check
    /// (changed outside tresor): the server refuses to use it until an
    /// admin restores it.
    #[error("the key's stored record fails its integrity check; an admin must restore it")]
    KeyRecordTampered,
    /// The key's purpose does not serve the operation (Encrypt on a MAC
    /// key, Mac on an encryption key...): use a key made for it.
    #[error("{0}")]
    WrongKeyPurpose(String),
    /// Another rule on the key's state forbids this.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The server is sealed.
    #[error("server is sealed: an admin must run `tresor unseal`")]
    Sealed,
    /// The server is up but cannot serve the call now (its keystore is
    /// unreachable, or the call's audit record could not be written).
    /// Whether a change was made before the refusal is unknown.
    #[error("server unavailable: {0}")]
    Unavailable(String),
    /// The caller exceeded its rate limit.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// The server could not identify the caller.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Too many requests or a too-large message.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The server failed internally.
    #[error("server error: {0}")]
    Internal(String),
    /// Any other status.
    #[error("{code}: {message}")]
    Other {
        /// The gRPC status code, in words.
        code: String,
        /// The server's message.
        message: String,
    },
}

impl ClientError {
    /// Whether this is a connection or TLS failure rather than a refusal.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// Whether the server certainly did nothing, so that even a call that
    /// is not idempotent may be sent again: the server was sealed (it
    /// refuses before acting), or no connection could be made.
    pub(crate) fn nothing_done(&self) -> bool {
        match self {
            Self::Sealed => true,
            Self::Connect { hint, detail, .. } => {
                matches!(
                    hint,
                    ConnectHint::ServerNotRunning | ConnectHint::BadAddress
                ) || cancelled_unsent(detail)
            }
            _ => false,
        }
    }

    /// Whether the failure may pass: the server is sealed, unavailable, or
    /// unreachable (gRPC UNAVAILABLE, and connection failures).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Sealed | Self::Unavailable(_) => true,
            Self::Connect { detail, .. } if cancelled_unsent(detail) => true,
            Self::Connect { hint, .. } => !matches!(
                hint,
                ConnectHint::WrongCa
                    | ConnectHint::MissingClientCert
                    | ConnectHint::ClientCertRejected
                    | ConnectHint::CertificateExpired
                    | ConnectHint::NameMismatch
            ),
            _ => false,
        }
    }
}

/// Whether hyper cancelled the call before sending it because its
/// connection closed: the server closed an idle connection as the call was
/// queued on it (nothing done, the next attempt opens a new connection),
/// or refused the client certificate of a new one (the attempts then run
/// out and the error says so). The text alone cannot tell them apart.
fn cancelled_unsent(detail: &str) -> bool {
    detail.contains("operation was canceled") && detail.contains("connection closed")
}

/// The typed error for a server's [`Reason`]; `None` for a reason newer
/// than this SDK, which then falls back to the status code.
fn from_reason(reason: Reason, message: &str) -> Option<ClientError> {
    Some(match reason {
        Reason::KeyDisabled => ClientError::KeyDisabled,
        Reason::KeyPendingDeletion => ClientError::KeyPendingDeletion,
        Reason::KeyVersionBelowMinimum => ClientError::KeyVersionBelowMinimum(message.to_owned()),
        Reason::KeyVersionDestroyed => ClientError::KeyVersionDestroyed(message.to_owned()),
        Reason::InvalidCiphertext => ClientError::InvalidCiphertext,
        Reason::WrappedDataKey => ClientError::WrappedDataKey,
        Reason::KeyRecordTampered => ClientError::KeyRecordTampered,
        Reason::Sealed => ClientError::Sealed,
        Reason::KeystoreUnavailable | Reason::AuditUnavailable => {
            ClientError::Unavailable(message.to_owned())
        }
        Reason::RateLimited => ClientError::RateLimited(message.to_owned()),
        Reason::WrongKeyPurpose => ClientError::WrongKeyPurpose(message.to_owned()),
        _ => return None,
    })
}

/// The reason behind a status without reason metadata (batch items carry
/// only code and message; older servers send none), from the server's
/// fixed messages.
fn reason_from_message(code: Code, message: &str) -> Option<Reason> {
    Some(match (code, message) {
        (Code::FailedPrecondition, "key is disabled") => Reason::KeyDisabled,
        (Code::FailedPrecondition, "key is pending deletion") => Reason::KeyPendingDeletion,
        (Code::FailedPrecondition, m) if m.contains("below the minimum decryption version") => {
            Reason::KeyVersionBelowMinimum
        }
        (Code::FailedPrecondition, m)
            if m.starts_with("key version") && m.ends_with("was destroyed") =>
        {
            Reason::KeyVersionDestroyed
        }
        (Code::FailedPrecondition, m) if m.starts_with("the key's purpose is ") => {
            Reason::WrongKeyPurpose
        }
        (Code::InvalidArgument, m) if m.starts_with("invalid ciphertext") => {
            Reason::InvalidCiphertext
        }
        (Code::Unavailable, "service is sealed") => Reason::Sealed,
        (Code::Unavailable, m) if m.starts_with("keystore unavailable") => {
            Reason::KeystoreUnavailable
        }
        (Code::Unavailable, m) if m.starts_with("audit log unavailable") => {
            Reason::AuditUnavailable
        }
        _ => return None,
    })
}

/// Every message in an error's source chain, joined with `: ` (repeated
/// messages once), so causes buried in the chain (a TLS alert, a socket
/// error) reach the person reading it.
pub fn describe_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
}

/// Context needed to turn a status into a [`ClientError`].
#[derive(Debug, Clone)]
pub(crate) struct CallSite {
    pub endpoint: String,
    pub had_client_cert: bool,
}

impl CallSite {
    pub fn status(&self, status: tonic::Status) -> ClientError {
        let message = status.message().to_owned();
        let reason = Reason::of(&status).or_else(|| reason_from_message(status.code(), &message));
        if let Some(typed) = reason.and_then(|reason| from_reason(reason, &message)) {
            return typed;
        }
        match status.code() {
            Code::PermissionDenied => ClientError::PermissionDenied(message),
            Code::NotFound => ClientError::NotFound(message),
            Code::AlreadyExists => ClientError::AlreadyExists(message),
            Code::InvalidArgument | Code::OutOfRange => ClientError::InvalidArgument(message),
            Code::FailedPrecondition => ClientError::FailedPrecondition(message),
            Code::Unauthenticated => ClientError::Unauthenticated(message),
            Code::ResourceExhausted => ClientError::ResourceExhausted(message),
            Code::Internal => ClientError::Internal(message),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => {
                let detail = match StdError::source(&status) {
                    Some(source) => {
                        let chain = describe_chain(source);
                        if chain.starts_with(&message) {
                            chain
                        } else {
                            format!("{message}: {chain}")
                        }
                    }
                    None => message,
                };
                ClientError::Connect {
                    endpoint: self.endpoint.clone(),
                    hint: ConnectHint::classify(&detail, self.had_client_cert),
                    detail,
                }
            }
            other => ClientError::Other {
                code: code_words(other).to_owned(),
                message,
            },
        }
    }

    pub fn transport(&self, err: &tonic::transport::Error) -> ClientError {
        let detail = describe_chain(err);
        ClientError::Connect {
            endpoint: self.endpoint.clone(),
            hint: ConnectHint::classify(&detail, self.had_client_cert),
            detail,
        }
    }
}

/// A status code in plain words.
pub fn code_words(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "not implemented by this server",
        Code::Internal => "internal error",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

impl fmt::Display for ConnectHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.advice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_this_build_knows_has_a_typed_error() {
        for reason in Reason::ALL {
            assert!(
                from_reason(reason, "message").is_some(),
                "{reason:?} has no typed ClientError"
            );
        }
    }

    #[test]
    fn a_call_cancelled_by_a_closing_connection_is_sent_again_even_when_unsafe() {
        // What tonic reports when hyper had queued the call on a connection
        // the server then closed (or whose client certificate it refused).
        let detail = "operation was canceled: connection closed";
        for had_client_cert in [true, false] {
            let error = ClientError::Connect {
                endpoint: "https://localhost:7443".into(),
                hint: ConnectHint::classify(detail, had_client_cert),
                detail: detail.into(),
            };
            assert!(error.is_transient() && error.nothing_done());
        }
        // When the attempts run out it still reads as a refusal.
        assert_eq!(
            ConnectHint::classify(detail, false),
            ConnectHint::MissingClientCert
        );
        assert_eq!(
            ConnectHint::classify(detail, true),
            ConnectHint::ClientCertRejected
        );
    }
}
