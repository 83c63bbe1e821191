//! What the CLI prints: aligned tables and readable blocks for humans, one
//! JSON document per command for scripts (`--output json`). The JSON field
//! names are a stable, documented interface (README, "CLI JSON output").

use serde::Serialize;

use tresor_proto::v1 as proto;

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables and blocks for people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
}

/// A key version as printed.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    /// Version number.
    pub version: u32,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// When its key material was destroyed, else null.
    pub destroyed_at: Option<String>,
}

/// A grant as printed.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// The identity granted, or a pattern `spiffe://.../*`.
    pub grantee: String,
    /// Operation names: encrypt, decrypt, reencrypt, generate-data-key,
    /// mac, verify-mac.
    pub operations: Vec<String>,
    /// The context a request must have exactly (omitted when none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub context_equals: std::collections::BTreeMap<String, String>,
    /// Pairs a request's context must contain (omitted when none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub context_subset: std::collections::BTreeMap<String, String>,
    /// When the grant expires, RFC 3339 UTC (omitted when never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Whether it has expired (it allows nothing then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

/// The table of a key's grants, each row's first cell after `indent`: a
/// CONDITIONS column only when some grant has a constraint or an expiry.
pub fn grant_rows(grants: &[GrantView], indent: &str) -> Vec<Vec<String>> {
    let conditional = grants.iter().any(|g| g.conditions() != "-");
    let mut header = vec![format!("{indent}GRANTEE"), "OPERATIONS".to_owned()];
    if conditional {
        header.push("CONDITIONS".to_owned());
    }
    let mut rows = vec![header];
    rows.extend(grants.iter().map(|g| {
        let mut row = vec![format!("{indent}{}", g.grantee), g.operations.join(",")];
        if conditional {
            row.push(g.conditions());
        }
        row
    }));
    rows
}

impl GrantView {
    /// Its constraint and expiry for people ("-" when none).
    fn conditions(&self) -> String {
        let pairs = |map: &std::collections::BTreeMap<String, String>| {
            map.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut parts = Vec::new();
        if !self.context_equals.is_empty() {
            parts.push(format!("context = {}", pairs(&self.context_equals)));
        }
        if !self.context_subset.is_empty() {
            parts.push(format!("context has {}", pairs(&self.context_subset)));
        }
        if let Some(at) = &self.expires_at {
            let state = if self.expired { "expired " } else { "until " };
            parts.push(format!("{state}{at}"));
        }
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// A key as printed.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// Key id.
    pub key_id: String,
    /// Owner identity.
    pub owner: String,
    /// enabled, disabled or pending_deletion.
    pub state: String,
    /// encrypt-decrypt, mac or deterministic.
    pub purpose: String,
    /// Labels, sorted by key.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Free text.
    pub description: String,
    /// Version used by new encryptions.
    pub primary_version: u32,
    /// Lowest version that still decrypts.
    pub min_decryption_version: u32,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Deletion time when pending deletion, else null.
    pub deletion_at: Option<String>,
    /// Automatic rotation period in seconds, else null.
    pub rotation_period_seconds: Option<u64>,
    /// When the server rotates the key next, else null.
    pub next_rotation_at: Option<String>,
    /// Every version, oldest first.
    pub versions: Vec<VersionView>,
    /// Grants to other identities.
    pub grants: Vec<GrantView>,
}

/// Server status as printed.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    /// Whether the server is sealed.
    pub sealed: bool,
    /// Number of keys.
    pub key_count: u64,
    /// Server version.
    pub server_version: String,
    /// The master key wrapping the root key.
    pub master_key: String,
    /// Generation of the current root key.
    pub root_key_generation: u32,
    /// A root-key rotation in progress, else null.
    pub root_rotation: Option<RootRotationView>,
    /// What unsealing takes, and the approvals so far.
    pub unseal: UnsealView,
    /// The certificate the server presents to new handshakes (null from
    /// older servers).
    pub server_certificate: Option<ServerCertificateView>,
}

/// A certificate the server serves, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct ServerCertificateView {
    /// Its subject.
    pub subject: String,
    /// Its serial, colon-separated hex.
    pub serial: String,
    /// End of its validity, RFC 3339 UTC.
    pub expires: String,
    /// End of its validity, Unix seconds.
    pub expires_unix: i64,
}

/// What unsealing takes, and the approvals of the open round, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct UnsealView {
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Approvals so far in the open round.
    pub approvals: u32,
    /// Who approved in the open round.
    pub approved_by: Vec<String>,
    /// Seconds left in the open round (0: none open).
    pub window_remaining_seconds: u64,
    /// Whether each approval needs the unseal token.
    pub token_required: bool,
}

/// Progress of a root-key rotation as printed.
#[derive(Debug, Clone, Serialize)]
pub struct RootRotationView {
    /// DEK versions visited in the current pass.
    pub rewrapped: u64,
    /// DEK versions in the keystore.
    pub total: u64,
}

/// A rotation period as people write it: whole days as `90d`, whole hours
/// as `12h`, anything else spelled out (`1h 30m`).
pub fn period(period: std::time::Duration) -> String {
    let secs = period.as_secs();
    if secs > 0 && secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        humantime::format_duration(period).to_string()
    }
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn timestamp(unix: i64) -> String {
    let seconds = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
    .to_string()
}

/// Name of an operation as the CLI spells it.
pub fn operation_name(op: proto::Operation) -> &'static str {
    match op {
        proto::Operation::Encrypt => "encrypt",
        proto::Operation::Decrypt => "decrypt",
        proto::Operation::Reencrypt => "reencrypt",
        proto::Operation::GenerateDataKey => "generate-data-key",
        proto::Operation::Mac => "mac",
        proto::Operation::VerifyMac => "verify-mac",
        proto::Operation::Unspecified => "unspecified",
    }
}

/// Name of a key purpose as the CLI spells it (`--purpose`).
pub fn purpose_name(raw: i32) -> &'static str {
    match proto::KeyPurpose::try_from(raw) {
        Ok(proto::KeyPurpose::EncryptDecrypt | proto::KeyPurpose::Unspecified) => "encrypt-decrypt",
        Ok(proto::KeyPurpose::Mac) => "mac",
        Ok(proto::KeyPurpose::Deterministic) => "deterministic",
        Err(_) => "unknown",
    }
}

fn state_name(raw: i32) -> &'static str {
    match proto::KeyState::try_from(raw) {
        Ok(proto::KeyState::Enabled) => "enabled",
        Ok(proto::KeyState::Disabled) => "disabled",
        Ok(proto::KeyState::PendingDeletion) => "pending_deletion",
        _ => "unknown",
    }
}

impl From<&proto::KeyInfo> for KeyView {
    fn from(key: &proto::KeyInfo) -> Self {
        Self {
            key_id: key.key_id.clone(),
            owner: key.owner.clone(),
            state: state_name(key.state).to_owned(),
            purpose: purpose_name(key.purpose).to_owned(),
            labels: key
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            description: key.description.clone(),
            primary_version: key.primary_version,
            min_decryption_version: key.min_decryption_version,
            created_at: timestamp(key.created_at_unix),
            deletion_at: (key.deletion_at_unix != 0).then(|| timestamp(key.deletion_at_unix)),
            rotation_period_seconds: (key.rotation_period_seconds != 0)
                .then_some(key.rotation_period_seconds),
            next_rotation_at: (key.next_rotation_at_unix != 0)
                .then(|| timestamp(key.next_rotation_at_unix)),
            versions: key
                .versions
                .iter()
                .map(|v| VersionView {
                    version: v.version,
                    created_at: timestamp(v.created_at_unix),
                    destroyed_at: (v.destroyed_at_unix != 0)
                        .then(|| timestamp(v.destroyed_at_unix)),
                })
                .collect(),
            grants: key
                .grants
                .iter()
                .map(|g| GrantView {
                    grantee: g.grantee.clone(),
                    operations: g
                        .operations
                        .iter()
                        .filter_map(|op| proto::Operation::try_from(*op).ok())
                        .map(|op| operation_name(op).to_owned())
                        .collect(),
                    context_equals: g.context_equals.clone().into_iter().collect(),
                    context_subset: g.context_subset.clone().into_iter().collect(),
                    expires_at: (g.expires_at_unix != 0).then(|| timestamp(g.expires_at_unix)),
                    expired: g.expired,
                })
                .collect(),
        }
    }
}

impl From<&proto::SealStatus> for StatusView {
    fn from(status: &proto::SealStatus) -> Self {
        Self {
            sealed: status.sealed,
            key_count: status.key_count,
            server_version: status.server_version.clone(),
            master_key: status.master_key.clone(),
            root_key_generation: status.root_key_generation,
            root_rotation: status
                .root_rotation_in_progress
                .then_some(RootRotationView {
                    rewrapped: status.root_rotation_rewrapped,
                    total: status.root_rotation_total,
                }),
            unseal: UnsealView {
                quorum: status.unseal_quorum,
                approvals: status.unseal_approvals,
                approved_by: status.unseal_approved_by.clone(),
                window_remaining_seconds: status.unseal_window_remaining_seconds,
                token_required: status.unseal_token_required,
            },
            server_certificate: status.server_certificate.as_ref().map(|served| {
                ServerCertificateView {
                    subject: served.subject.clone(),
                    serial: served.serial.clone(),
                    expires: timestamp(served.not_after_unix),
                    expires_unix: served.not_after_unix,
                }
            }),
        }
    }
}

/// Left-aligned columns separated by two spaces; the first row is the
/// header.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `tresor key list` for people.
pub fn key_table(keys: &[KeyView]) -> String {
    if keys.is_empty() {
        return "no keys\n".to_owned();
    }
    let mut rows = vec![
        ["KEY ID", "STATE", "PRIMARY", "MIN", "OWNER", "CREATED"]
            .map(str::to_owned)
            .to_vec(),
    ];
    rows.extend(keys.iter().map(|k| {
        vec![
            k.key_id.clone(),
            k.state.clone(),
            k.primary_version.to_string(),
            k.min_decryption_version.to_string(),
            k.owner.clone(),
            k.created_at.clone(),
        ]
    }));
    table(&rows)
}

/// `tresor key show` for people.
pub fn key_block(key: &KeyView) -> String {
    let none = || "-".to_owned();
    let mut out = table(&[
        vec!["Key:".into(), key.key_id.clone()],
        vec!["Owner:".into(), key.owner.clone()],
        vec!["State:".into(), key.state.clone()],
        vec!["Purpose:".into(), key.purpose.clone()],
        vec![
            "Labels:".into(),
            if key.labels.is_empty() {
                none()
            } else {
                key.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ],
        vec![
            "Description:".into(),
            if key.description.is_empty() {
                none()
            } else {
                key.description.clone()
            },
        ],
        vec!["Primary version:".into(), key.primary_version.to_string()],
        vec![
            "Min decryption version:".into(),
            key.min_decryption_version.to_string(),
        ],
        vec!["Created:".into(), key.created_at.clone()],
        vec![
            "Deletion date:".into(),
            key.deletion_at.clone().unwrap_or_else(none),
        ],
        vec![
            "Rotation period:".into(),
            key.rotation_period_seconds
                .map_or_else(none, |secs| period(std::time::Duration::from_secs(secs))),
        ],
        vec![
            "Next rotation:".into(),
            key.next_rotation_at.clone().unwrap_or_else(none),
        ],
    ]);
    out.push_str("\nVersions:\n");
    let mut rows = vec![vec![
        "  VERSION".to_owned(),
        "CREATED".to_owned(),
        "DESTROYED".to_owned(),
    ]];
    rows.extend(key.versions.iter().map(|v| {
        vec![
            format!("  {}", v.version),
            v.created_at.clone(),
            v.destroyed_at.clone().unwrap_or_else(none),
        ]
    }));
    out.push_str(&table(&rows));
    out.push_str("\nGrants:\n");
    if key.grants.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows = grant_rows(&key.grants, "  ");
        out.push_str(&table(&rows));
    }
    out
}

/// `tresor status` for people.
pub fn status_block(status: &StatusView) -> String {
    table(&[
        vec!["Sealed:".into(), status.sealed.to_string()],
        vec!["Keys:".into(), status.key_count.to_string()],
        vec!["Server version:".into(), status.server_version.clone()],
        vec!["Master key:".into(), status.master_key.clone()],
        vec![
            "Root key:".into(),
            match &status.root_rotation {
                None => format!("generation {}", status.root_key_generation),
                Some(r) => format!(
                    "generation {} (rotation in progress: {}/{} DEKs re-wrapped)",
                    status.root_key_generation, r.rewrapped, r.total
                ),
            },
        ],
        vec!["Unseal:".into(), unseal_line(&status.unseal)],
        vec![
            "Certificate:".into(),
            status.server_certificate.as_ref().map_or_else(
                || "not reported".to_owned(),
                |served| {
                    format!(
                        "{} (serial {}), expires {}",
                        served.subject, served.serial, served.expires
                    )
                },
            ),
        ],
    ])
}

/// What unsealing takes, and the open round: `2 approvals + token; 1 so
/// far (spiffe://x/alice), round ends in 14m 10s`.
fn unseal_line(unseal: &UnsealView) -> String {
    let mut line = match unseal.quorum {
        1 => "1 approval".to_owned(),
        n => format!("{n} approvals"),
    };
    if unseal.token_required {
        line.push_str(" + token");
    }
    if unseal.approvals > 0 {
        line.push_str(&format!(
            "; {} so far ({}), round ends in {}",
            unseal.approvals,
            unseal.approved_by.join(", "),
            humantime::format_duration(std::time::Duration::from_secs(
                unseal.window_remaining_seconds
            ))
        ));
    }
    line
}

/// Serializes `value` as pretty JSON with a trailing newline.
pub fn json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail (no maps with non-string
    // keys, no custom serializers); fall back to an error document anyway.
    let mut text = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode output: {e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "x".into(), "y".into()],
        ]);
        assert_eq!(text, "A     BB  C\nlong  x   y\n");
    }

    #[test]
    fn periods_read_as_people_write_them() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(period(secs(90 * 86_400)), "90d");
        assert_eq!(period(secs(12 * 3600)), "12h");
        assert_eq!(period(secs(5400)), "1h 30m");
    }

    #[test]
    fn the_status_shows_the_unseal_progress() {
        let mut unseal = UnsealView {
            quorum: 1,
            approvals: 0,
            approved_by: Vec::new(),
            window_remaining_seconds: 0,
            token_required: false,
        };
        assert_eq!(unseal_line(&unseal), "1 approval");
        unseal.quorum = 2;
        unseal.token_required = true;
        unseal.approvals = 1;
        unseal.approved_by = vec!["spiffe://x/alice".into()];
        unseal.window_remaining_seconds = 850;
        assert_eq!(
            unseal_line(&unseal),
            "2 approvals + token; 1 so far (spiffe://x/alice), round ends in 14m 10s"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_790_000_000), "2026-09-21T14:13:20Z");
    }
}
