//! The one mapping from service errors to gRPC statuses. Internal failures
//! get a fixed message; their details go to the log only.

use tonic::Status;

use super::reason::Reason;
use crate::error::Error;

impl From<Error> for Status {
    /// The status, tagged with its [`Reason`] when it has one.
    fn from(err: Error) -> Self {
        let reason = Reason::for_error(&err);
        let status = status_of(err);
        match reason {
            Some(reason) => reason.tag(status),
            None => status,
        }
    }
}

/// The status itself: code and message.
fn status_of(err: Error) -> Status {
    match err {
        Error::InvalidArgument(msg) => Status::invalid_argument(msg),
        Error::InvalidCiphertext(_) => Status::invalid_argument(
            "invalid ciphertext: malformed, tampered with, or made with another key or context",
        ),
        Error::WrappedDataKey => Status::invalid_argument(
            "this is a wrapped data key from GenerateDataKey: open it with DecryptDataKey, not Decrypt",
        ),
        Error::TamperedKeyRecord(_) => Status::data_loss(
            "the key's stored record fails its integrity check (changed outside tresor); an admin must restore it: see the server's audit log",
        ),
        Error::PermissionDenied => {
            Status::permission_denied("this identity may not do this, or the key does not exist")
        }
        Error::NotFound => Status::not_found("no key with this id"),
        Error::AlreadyExists => Status::already_exists("a key with this id exists"),
        Error::FailedPrecondition(why) => Status::failed_precondition(why.to_string()),
        Error::Sealed => Status::unavailable("service is sealed"),
        Error::Store(crate::error::StoreError::Unavailable(detail)) => {
            tracing::error!(%detail, "keystore unavailable");
            Status::unavailable("keystore unavailable; retry later")
        }
        Error::Audit(detail) => {
            tracing::error!(%detail, "request refused: its audit record cannot be written");
            Status::unavailable("audit log unavailable; request refused")
        }
        Error::RateLimited(why) => Status::resource_exhausted(why),
        Error::Store(_) | Error::MasterKey(_) | Error::Crypto(_) => {
            tracing::error!(error = %err, "internal error");
            Status::internal("internal error; see the server log")
        }
        #[allow(unreachable_patterns)]
        other => {
            tracing::error!(error = %other, "unclassified error");
            Status::internal("internal error; see the server log")
        }
    }
}
