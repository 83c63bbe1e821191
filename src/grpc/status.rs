//! The one mapping from service errors to gRPC statuses: [`classify`]
//! decides the code, the message and the `x-tresor-reason` of every
//! [`Error`], with no wildcard arm, so a new error variant does not compile
//! until it is classified. Internal failures get a fixed message; their
//! details go to the log only. Master-key failures (only admin calls reach
//! the master key) show their cause, which never carries key material,
//! except facts about host files, which go to the log.

use std::borrow::Cow;

use tonic::{Code, Status};
use tresor_proto::Reason;

use crate::error::{Error, MasterKeyError, Precondition, StoreError};

/// What a caller is told about an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The gRPC status code.
    pub code: Code,
    /// The human message: short, no key material, no host facts.
    pub message: Cow<'static, str>,
    /// The machine-readable reason, when the error has one.
    pub reason: Option<Reason>,
}

impl Classified {
    fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
        }
    }

    fn because(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// Classifies a service error. Logs the details it withholds.
pub fn classify(err: &Error) -> Classified {
    match err {
        Error::InvalidArgument(msg) => Classified::new(Code::InvalidArgument, msg.clone()),
        Error::InvalidCiphertext(_) => Classified::new(
            Code::InvalidArgument,
            "invalid ciphertext: malformed, tampered with, or made with another key or context",
        )
        .because(Reason::InvalidCiphertext),
        Error::WrappedDataKey => Classified::new(
            Code::InvalidArgument,
            "this is a wrapped data key from GenerateDataKey: open it with DecryptDataKey, not Decrypt",
        )
        .because(Reason::WrappedDataKey),
        Error::TamperedKeyRecord(_) => Classified::new(
            Code::DataLoss,
            "the key's stored record fails its integrity check (changed outside tresor); an admin must restore it: see the server's audit log",
        )
        .because(Reason::KeyRecordTampered),
        Error::PermissionDenied => Classified::new(
            Code::PermissionDenied,
            "this identity may not do this, or the key does not exist",
        ),
        Error::SelfGrant => Classified::new(
            Code::PermissionDenied,
            "an admin cannot give itself use of a key it does not own: another admin must make this grant or transfer",
        ),
        Error::SelfRole => Classified::new(
            Code::PermissionDenied,
            "an admin cannot give itself a role it does not hold: another admin must add this binding",
        ),
        Error::RoleBindingExists => Classified::new(
            Code::AlreadyExists,
            "this role is already bound to this identity or pattern",
        ),
        Error::NoSuchRoleBinding => Classified::new(
            Code::NotFound,
            "no such role binding: see tresor role list",
        ),
        Error::NotFound => Classified::new(Code::NotFound, "no key with this id"),
        Error::AlreadyExists => Classified::new(Code::AlreadyExists, "a key with this id exists"),
        Error::FailedPrecondition(why) => precondition(why),
        Error::Sealed => {
            Classified::new(Code::Unavailable, "service is sealed").because(Reason::Sealed)
        }
        Error::Store(StoreError::Unavailable(detail)) => {
            tracing::error!(%detail, "keystore unavailable");
            Classified::new(Code::Unavailable, "keystore unavailable; retry later")
                .because(Reason::KeystoreUnavailable)
        }
        Error::Audit(detail) => {
            tracing::error!(%detail, "request refused: its audit record cannot be written");
            Classified::new(Code::Unavailable, "audit log unavailable; request refused")
                .because(Reason::AuditUnavailable)
        }
        Error::RateLimited(why) => {
            Classified::new(Code::ResourceExhausted, why.clone()).because(Reason::RateLimited)
        }
        Error::MasterKey(master_key) => master_key_failure(master_key),
        Error::Store(_) | Error::Crypto(_) => {
            tracing::error!(error = %err, "internal error");
            Classified::new(Code::Internal, "internal error; see the server log")
        }
    }
}

fn precondition(why: &Precondition) -> Classified {
    let classified = Classified::new(Code::FailedPrecondition, why.to_string());
    match why {
        Precondition::Disabled => classified.because(Reason::KeyDisabled),
        Precondition::PendingDeletion => classified.because(Reason::KeyPendingDeletion),
        Precondition::BelowMinDecryptionVersion { .. } => {
            classified.because(Reason::KeyVersionBelowMinimum)
        }
        Precondition::VersionDestroyed { .. } => classified.because(Reason::KeyVersionDestroyed),
        Precondition::WrongKeyPurpose { .. } => classified.because(Reason::WrongKeyPurpose),
        Precondition::RotationNotDue
        | Precondition::TooManyVersions { .. }
        | Precondition::Other(_) => classified,
    }
}

/// A master-key failure (access denied, wrong key, unreachable KMS...) is
/// shown with its cause, except a key file's path, mode or length: facts
/// about the host go to the log, the caller gets a pointer to it.
fn master_key_failure(err: &MasterKeyError) -> Classified {
    match err {
        MasterKeyError::Io { .. }
        | MasterKeyError::InsecurePermissions { .. }
        | MasterKeyError::BadLength { .. } => {
            tracing::error!(error = %err, "master key file unusable");
            Classified::new(
                Code::FailedPrecondition,
                "master key: the key file cannot be used; the server log has the cause",
            )
        }
        MasterKeyError::WrongMasterKey
        | MasterKeyError::Crypto(_)
        | MasterKeyError::Mismatch { .. }
        | MasterKeyError::KmsAccessDenied { .. }
        | MasterKeyError::Kms { .. }
        | MasterKeyError::InvalidSpec(_) => {
            Classified::new(Code::FailedPrecondition, format!("master key: {err}"))
        }
    }
}

impl From<Error> for Status {
    /// The status of [`classify`], tagged with its reason when it has one.
    fn from(err: Error) -> Self {
        let Classified {
            code,
            message,
            reason,
        } = classify(&err);
        let status = Status::new(code, message);
        match reason {
            Some(reason) => reason.tag(status),
            None => status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_the_error() {
        let sealed = Status::from(Error::Sealed);
        assert_eq!(sealed.code(), Code::Unavailable);
        assert_eq!(Reason::of(&sealed), Some(Reason::Sealed));
        let denied = Status::from(Error::PermissionDenied);
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(Reason::of(&denied), None);
    }
}
