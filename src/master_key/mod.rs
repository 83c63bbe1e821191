//! Master-key providers: the key outside the keystore that wraps the root
//! key. Only start-up, unseal and master-key rotation call a provider; the
//! request path never does.
//!
//! [`MasterKey`] is the capability; [`FileMasterKey`] keeps the key in a
//! local 32-byte file; [`AwsKmsMasterKey`] (feature `aws-kms`, on by
//! default) keeps it in AWS KMS. [`MasterKeySpec`] names one of them the way
//! flags and requests do (`file:PATH`, `aws-kms:KEY`); [`RotationTargets`]
//! is the server's allowlist of master keys an online rotation may move to.

#[cfg(feature = "aws-kms")]
mod aws_kms;
mod file;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::MasterKeyError;
use tresor_crypto::SecretKey;

#[cfg(feature = "aws-kms")]
pub use aws_kms::AwsKmsMasterKey;
pub use file::FileMasterKey;

/// Wraps and unwraps the keystore's root key.
#[async_trait]
pub trait MasterKey: Send + Sync + 'static {
    /// Short provider name (`file`, `aws-kms`).
    fn provider(&self) -> &'static str;

    /// Human description for logs and records (a path or a KMS key id; never
    /// key bytes).
    fn describe(&self) -> String;

    /// Wraps `root`, generation `generation` of the keystore
    /// `keystore_id`'s root keys, bound to both: the wrapping opens for that
    /// keystore and that generation only.
    async fn wrap_root_key(
        &self,
        root: &SecretKey,
        keystore_id: &str,
        generation: u32,
    ) -> Result<Vec<u8>, MasterKeyError>;

    /// Unwraps a root key wrapped by [`MasterKey::wrap_root_key`] for the same
    /// keystore and generation. Wrappings written before the generation was
    /// bound (they bind generation 1 whatever the generation) still open;
    /// the next master-key or root-key rotation replaces them.
    async fn unwrap_root_key(
        &self,
        wrapped: &[u8],
        keystore_id: &str,
        generation: u32,
    ) -> Result<SecretKey, MasterKeyError>;
}

/// Which master key to use, as flags and requests name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySpec {
    /// A local key file (`file:PATH`, or `--master-key-file PATH`).
    File(PathBuf),
    /// An AWS KMS key (`aws-kms:KEY_ID_OR_ARN_OR_ALIAS`).
    AwsKms {
        /// Key id, ARN or alias.
        key_id: String,
        /// KMS endpoint override (`--aws-endpoint`).
        endpoint: Option<String>,
    },
}

impl MasterKeySpec {
    /// Parses `file:PATH` or `aws-kms:KEY`; `endpoint` applies to AWS KMS.
    pub fn parse(spec: &str, endpoint: Option<String>) -> Result<Self, MasterKeyError> {
        if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() {
                return Err(MasterKeyError::InvalidSpec(
                    "file: needs a path, for example file:/etc/tresor/master.key".into(),
                ));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(key_id) = spec.strip_prefix("aws-kms:") {
            if key_id.is_empty() {
                return Err(MasterKeyError::InvalidSpec(
                    "aws-kms: needs a key id, ARN or alias, for example aws-kms:alias/tresor"
                        .into(),
                ));
            }
            if let Some(url) = &endpoint {
                check_endpoint(url)?;
            }
            return Ok(Self::AwsKms {
                key_id: key_id.to_owned(),
                endpoint,
            });
        }
        Err(MasterKeyError::InvalidSpec(format!(
            "{spec:?} is not a master key: use aws-kms:KEY_ID_OR_ARN_OR_ALIAS or file:PATH"
        )))
    }

    /// Opens the provider, checking what can be checked without a keystore
    /// (file permissions and length; KMS configuration).
    pub async fn open(&self) -> Result<Arc<dyn MasterKey>, MasterKeyError> {
        match self {
            Self::File(path) => Ok(Arc::new(FileMasterKey::open(path)?)),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms { key_id, endpoint } => Ok(Arc::new(
                AwsKmsMasterKey::connect(key_id, endpoint.as_deref()).await?,
            )),
            #[cfg(not(feature = "aws-kms"))]
            Self::AwsKms { .. } => Err(MasterKeyError::InvalidSpec(
                "this build of tresor has no AWS KMS support (built without the aws-kms feature)"
                    .into(),
            )),
        }
    }

    /// The whole specification, endpoint included, for audit records and
    /// logs: `aws-kms:KEY endpoint=URL` or `aws-kms:KEY endpoint=default`.
    pub fn full_description(&self) -> String {
        match self {
            Self::File(_) => self.to_string(),
            Self::AwsKms { endpoint, .. } => {
                format!(
                    "{self} endpoint={}",
                    endpoint.as_deref().unwrap_or("default")
                )
            }
        }
    }
}

/// Refuses a KMS endpoint that is not `https://`, except `http://` to a
/// loopback host (a local KMS-compatible server such as moto): the root key
/// travels to this endpoint to be wrapped.
pub fn check_endpoint(url: &str) -> Result<(), MasterKeyError> {
    let refuse = |why: &str| MasterKeyError::InvalidSpec(format!("KMS endpoint: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| refuse("not a URL"))?;
    let host = uri.host().ok_or_else(|| refuse("the URL names no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(refuse(
            "use https:// (plain http:// is accepted only for a loopback host)",
        )),
        _ => Err(refuse("use an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The master keys an online `RotateMasterKey` may name, configured on the
/// server (`--allowed-master-key`, repeatable) and never taken from a
/// request: one admin certificate must not be able to send the root key to
/// a KMS endpoint, or make the server read a file, of its choosing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationTargets {
    allowed: Vec<MasterKeySpec>,
    aws_endpoint: Option<String>,
}

/// Why a request may not rotate to the master key it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetRefused {
    /// The request set an endpoint; only the server's own applies.
    #[error(
        "aws_endpoint cannot be set by a request: the server's --aws-endpoint applies; leave it empty"
    )]
    EndpointInRequest,
    /// The name is not a master key specification.
    #[error("new_master_key: {0}")]
    Invalid(String),
    /// The key is not on the server's allowlist.
    #[error(
        "new_master_key is not among the master keys this server may rotate to (its --allowed-master-key flags); rotate offline with `tresor master-key rotate --data-dir`, or add it to the server's flags"
    )]
    NotAllowed,
}

impl RotationTargets {
    /// An allowlist of `specs`, each parsed with the server's `aws_endpoint`
    /// (already checked by [`check_endpoint`]). File keys need an absolute
    /// path, so the entry does not depend on the server's directory.
    pub fn new(specs: &[String], aws_endpoint: Option<String>) -> Result<Self, MasterKeyError> {
        let allowed = specs
            .iter()
            .map(|spec| {
                let parsed = MasterKeySpec::parse(spec, aws_endpoint.clone())?;
                match &parsed {
                    MasterKeySpec::File(path) if !path.is_absolute() => {
                        Err(MasterKeyError::InvalidSpec(format!(
                            "{spec}: give the key file's absolute path"
                        )))
                    }
                    _ => Ok(parsed),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allowed,
            aws_endpoint,
        })
    }

    /// What an audit record says a request asked for: the master key it
    /// names in full (endpoint included), and any endpoint it tried to set;
    /// text from the request is cut to a bounded length.
    pub fn describe_request(&self, name: &str, request_endpoint: &str) -> String {
        const MAX: usize = 256;
        let cut = |text: &str| -> String { text.chars().take(MAX).collect() };
        let mut described = if name.is_empty() {
            "new_master_key=current".to_owned()
        } else {
            match MasterKeySpec::parse(name, self.aws_endpoint.clone()) {
                Ok(spec) => format!("new_master_key={}", cut(&spec.full_description())),
                Err(_) => format!("new_master_key={:?} (invalid)", cut(name)),
            }
        };
        if !request_endpoint.is_empty() {
            described.push_str(&format!(
                " request_aws_endpoint={:?}",
                cut(request_endpoint)
            ));
        }
        described
    }

    /// The allowed master key that a request names as `name`, with
    /// `request_endpoint` (which must be empty). Nothing is opened, read or
    /// contacted here.
    pub fn resolve(
        &self,
        name: &str,
        request_endpoint: &str,
    ) -> Result<MasterKeySpec, TargetRefused> {
        if !request_endpoint.is_empty() {
            return Err(TargetRefused::EndpointInRequest);
        }
        let spec = MasterKeySpec::parse(name, self.aws_endpoint.clone())
            .map_err(|e| TargetRefused::Invalid(e.to_string()))?;
        if self.allowed.contains(&spec) {
            Ok(spec)
        } else {
            Err(TargetRefused::NotAllowed)
        }
    }
}

impl fmt::Display for MasterKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::AwsKms { key_id, .. } => write!(f, "aws-kms:{key_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_display() {
        assert_eq!(
            MasterKeySpec::parse("file:/k", None).expect("file"),
            MasterKeySpec::File("/k".into())
        );
        let kms =
            MasterKeySpec::parse("aws-kms:alias/tresor", Some("https://x".into())).expect("kms");
        assert_eq!(kms.to_string(), "aws-kms:alias/tresor");
        for bad in ["", "aws-kms:", "file:", "vault:x", "/etc/key"] {
            assert!(MasterKeySpec::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn kms_endpoints_need_https_unless_on_loopback() {
        for good in [
            "https://kms.eu-west-1.amazonaws.com",
            "https://10.0.0.5:8443",
            "http://127.0.0.1:5000",
            "http://localhost:4566",
            "http://[::1]:4566",
        ] {
            assert!(check_endpoint(good).is_ok(), "{good}");
            assert!(MasterKeySpec::parse("aws-kms:k", Some(good.into())).is_ok());
        }
        for bad in [
            "http://10.0.0.5:8080",
            "http://attacker.example",
            "http://127.0.0.1.attacker.example",
            "ftp://127.0.0.1",
            "127.0.0.1:5000",
            "not a url",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
            assert!(MasterKeySpec::parse("aws-kms:k", Some(bad.into())).is_err());
        }
    }

    #[test]
    fn rotation_targets_allow_only_their_own_entries() {
        let targets = RotationTargets::new(
            &[
                "aws-kms:alias/next".into(),
                "file:/etc/tresor/next.key".into(),
            ],
            Some("https://kms.example".into()),
        )
        .expect("targets");
        assert_eq!(
            targets.resolve("aws-kms:alias/next", ""),
            Ok(MasterKeySpec::AwsKms {
                key_id: "alias/next".into(),
                endpoint: Some("https://kms.example".into())
            })
        );
        assert!(targets.resolve("file:/etc/tresor/next.key", "").is_ok());
        assert_eq!(
            targets.resolve("aws-kms:alias/next", "https://kms.example"),
            Err(TargetRefused::EndpointInRequest)
        );
        for refused in ["aws-kms:alias/other", "file:/etc/passwd", "file:next.key"] {
            assert_eq!(
                targets.resolve(refused, ""),
                Err(TargetRefused::NotAllowed),
                "{refused}"
            );
        }
        assert!(matches!(
            targets.resolve("vault:x", ""),
            Err(TargetRefused::Invalid(_))
        ));
        assert_eq!(
            RotationTargets::default().resolve("aws-kms:alias/next", ""),
            Err(TargetRefused::NotAllowed)
        );
        assert!(RotationTargets::new(&["file:relative.key".into()], None).is_err());
    }
}
