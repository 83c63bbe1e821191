//! `tresor key ...`, `tresor grant ...`, `tresor seal|unseal|status`: the
//! control plane.

use clap::Subcommand;

use super::confirm::confirm;
use super::connection::Connection;
use super::data::{context, parse_pair};
use super::failure::CliError;
use super::output::{self, KeyView, OutputFormat, StatusView};
use tresor_client::ClientError;
use tresor_proto::v1 as proto;

/// `tresor key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key owned by a service identity.
    ///
    /// Example: tresor key create billing/customer-records --owner spiffe://example.org/billing --description "customer table"
    Create {
        /// Key id: 1-128 characters of A-Za-z0-9._/- not starting with '/'.
        id: String,
        /// Identity that owns the key (uses it for every data-plane call).
        #[arg(long, value_name = "IDENTITY")]
        owner: String,
        /// Free text for humans.
        #[arg(long, default_value = "", value_name = "TEXT")]
        description: String,
        /// Let the server rotate the key this often, for example 90d or
        /// 12h (at least 1h). Without it the key rotates only on request.
        #[arg(long, value_name = "DURATION", value_parser = parse_period)]
        rotation_period: Option<std::time::Duration>,
        /// What the key is for, fixed for its life: encrypt-decrypt
        /// (encrypt, decrypt, data keys), mac (blind indexes: tresor mac)
        /// or deterministic (equal plaintexts give equal ciphertexts, for
        /// equality search).
        #[arg(long, value_enum, default_value_t = PurposeArg::EncryptDecrypt)]
        purpose: PurposeArg,
        /// Label (repeatable): metadata for people and tooling, never
        /// access. Keys: a-z 0-9 _ . / - starting with a letter.
        #[arg(long = "label", value_name = "K=V", value_parser = parse_pair)]
        labels: Vec<(String, String)>,
    },
    /// Add a new version and make it primary (old versions keep decrypting).
    ///
    /// Example: tresor key rotate billing/customer-records
    Rotate {
        /// Key id.
        id: String,
    },
    /// Show a key: state, owner, versions with dates, grants, deletion date.
    ///
    /// Example: tresor key show billing/customer-records
    Show {
        /// Key id.
        id: String,
    },
    /// List keys (all pages).
    ///
    /// Example: tresor key list --prefix billing/
    List {
        /// Only ids starting with this.
        #[arg(long, default_value = "", value_name = "P")]
        prefix: String,
        /// Only keys with this label (repeatable: all of them).
        #[arg(long = "label", value_name = "K=V", value_parser = parse_pair)]
        labels: Vec<(String, String)>,
    },
    /// Replace a key's labels (metadata only; they never grant access).
    ///
    /// Example: tresor key set-labels billing/customer-records --label team=billing --label env=prod
    SetLabels {
        /// Key id.
        id: String,
        /// The new labels (repeatable); the old ones are dropped.
        #[arg(long = "label", value_name = "K=V", value_parser = parse_pair, required_unless_present = "clear")]
        labels: Vec<(String, String)>,
        /// Remove every label.
        #[arg(long, conflicts_with = "labels")]
        clear: bool,
    },
    /// Give a key to another owner (never to yourself: another admin must).
    ///
    /// Example: tresor key transfer billing/customer-records --to spiffe://example.org/billing-v2 --yes
    Transfer {
        /// Key id.
        id: String,
        /// The new owner's identity.
        #[arg(long, value_name = "IDENTITY")]
        to: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Replace a key's description (empty clears it).
    ///
    /// Example: tresor key set-description billing/customer-records "customer table, EU"
    SetDescription {
        /// Key id.
        id: String,
        /// The new description (at most 1024 bytes).
        description: String,
    },
    /// Disable a key: every data-plane call fails until it is enabled.
    ///
    /// Example: tresor key disable billing/customer-records --yes
    Disable {
        /// Key id.
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Enable a disabled key.
    ///
    /// Example: tresor key enable billing/customer-records
    Enable {
        /// Key id.
        id: String,
    },
    /// Refuse decryption of ciphertexts made with versions below N.
    ///
    /// Example: tresor key set-min-version billing/customer-records 3 --yes
    SetMinVersion {
        /// Key id.
        id: String,
        /// The new minimum decryption version (1 to the primary version).
        version: u32,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Set how often the server rotates the key by itself, or `off`.
    ///
    /// Example: tresor key set-rotation-period billing/customer-records 90d
    SetRotationPeriod {
        /// Key id.
        id: String,
        /// For example 90d or 12h (at least 1h), or `off`.
        #[arg(value_name = "DURATION|off", value_parser = parse_period_or_off)]
        period: PeriodOrOff,
    },
    /// Erase one old version's key material for ever.
    ///
    /// Its ciphertexts can never be decrypted again. Only versions below
    /// the minimum decryption version can be destroyed (`tresor key
    /// set-min-version` first). The wrapped key stays in the keystore's
    /// files until `tresor keystore compact`.
    ///
    /// Example: tresor key destroy-version billing/customer-records 1 --yes
    DestroyVersion {
        /// Key id.
        id: String,
        /// The version to destroy.
        version: u32,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Make the key unusable now and destroy it after a waiting period.
    ///
    /// Example: tresor key schedule-deletion billing/old-records --days 7 --yes
    ScheduleDeletion {
        /// Key id.
        id: String,
        /// Waiting period in days (7 to 30).
        #[arg(long, default_value_t = 30, value_name = "N")]
        days: u32,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Cancel a scheduled deletion (the key comes back disabled).
    ///
    /// Example: tresor key cancel-deletion billing/old-records
    CancelDeletion {
        /// Key id.
        id: String,
    },
}

/// `tresor grant ...`
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Let another identity use a key for some operations.
    ///
    /// Example: tresor grant create billing/customer-records --grantee spiffe://example.org/reports --ops decrypt
    Create {
        /// Key id.
        id: String,
        /// Identity receiving the grant, or every SPIFFE id under a path:
        /// spiffe://TRUST-DOMAIN/PATH/* (no other wildcard).
        #[arg(long, value_name = "IDENTITY|PATTERN")]
        grantee: String,
        /// Comma-separated: encrypt, decrypt, reencrypt, generate-data-key,
        /// mac, verify-mac.
        #[arg(long, value_name = "OPS", value_delimiter = ',', required = true, value_parser = parse_operation)]
        ops: Vec<proto::Operation>,
        /// Only requests whose context is exactly these pairs (repeatable).
        #[arg(long = "context-equals", value_name = "K=V", value_parser = parse_pair, conflicts_with = "context_subset")]
        context_equals: Vec<(String, String)>,
        /// Only requests whose context contains these pairs (repeatable).
        #[arg(long = "context-subset", value_name = "K=V", value_parser = parse_pair)]
        context_subset: Vec<(String, String)>,
        /// The grant stops allowing anything after this long, for example
        /// 30d or 12h.
        #[arg(long, value_name = "DURATION", value_parser = parse_period)]
        expires_in: Option<std::time::Duration>,
    },
    /// Take operations away from a grantee (all of them without --ops), in
    /// every grant it has on the key.
    ///
    /// Example: tresor grant revoke billing/customer-records --grantee spiffe://example.org/reports
    Revoke {
        /// Key id.
        id: String,
        /// Identity or pattern losing the grant, as granted.
        #[arg(long, value_name = "IDENTITY|PATTERN")]
        grantee: String,
        /// Comma-separated operations to remove; all when omitted.
        #[arg(long, value_name = "OPS", value_delimiter = ',', value_parser = parse_operation)]
        ops: Vec<proto::Operation>,
    },
    /// Show the grants of a key.
    ///
    /// Example: tresor grant list billing/customer-records
    List {
        /// Key id.
        id: String,
    },
}

/// `tresor key create --purpose`, and a key's `purpose:` in a policy file.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PurposeArg {
    /// Randomized encryption and data keys (the default).
    #[default]
    EncryptDecrypt,
    /// HMAC-SHA256 MAC tokens for blind indexes.
    Mac,
    /// Deterministic encryption (AES-SIV) for equality search.
    Deterministic,
}

impl From<PurposeArg> for proto::KeyPurpose {
    fn from(purpose: PurposeArg) -> Self {
        match purpose {
            PurposeArg::EncryptDecrypt => Self::EncryptDecrypt,
            PurposeArg::Mac => Self::Mac,
            PurposeArg::Deterministic => Self::Deterministic,
        }
    }
}

impl PurposeArg {
    /// A purpose as the server reports it (`None`: one this CLI does not
    /// know).
    pub fn from_proto(raw: i32) -> Option<Self> {
        match proto::KeyPurpose::try_from(raw).ok()? {
            proto::KeyPurpose::Unspecified | proto::KeyPurpose::EncryptDecrypt => {
                Some(Self::EncryptDecrypt)
            }
            proto::KeyPurpose::Mac => Some(Self::Mac),
            proto::KeyPurpose::Deterministic => Some(Self::Deterministic),
        }
    }

    /// The name `--purpose` takes.
    pub fn name(self) -> &'static str {
        output::purpose_name(proto::KeyPurpose::from(self).into())
    }
}

/// A rotation period given on the command line, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct PeriodOrOff(Option<std::time::Duration>);

fn parse_period(raw: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("{raw:?}: {e} (for example 90d or 12h)"))
}

fn parse_period_or_off(raw: &str) -> Result<PeriodOrOff, String> {
    match raw {
        "off" | "none" | "0" => Ok(PeriodOrOff(None)),
        other => parse_period(other).map(|period| PeriodOrOff(Some(period))),
    }
}

pub(super) fn parse_operation(raw: &str) -> Result<proto::Operation, String> {
    match raw.trim() {
        "encrypt" => Ok(proto::Operation::Encrypt),
        "decrypt" => Ok(proto::Operation::Decrypt),
        "reencrypt" | "re-encrypt" => Ok(proto::Operation::Reencrypt),
        "generate-data-key" | "datakey" => Ok(proto::Operation::GenerateDataKey),
        "mac" => Ok(proto::Operation::Mac),
        "verify-mac" => Ok(proto::Operation::VerifyMac),
        other => Err(format!(
            "unknown operation {other:?}; use encrypt, decrypt, reencrypt, generate-data-key, mac or verify-mac"
        )),
    }
}

fn about_key(err: ClientError, key_id: &str, conn: &Connection) -> CliError {
    CliError::about_key(err, key_id, conn.identity.as_ref())
}

fn print_key(format: OutputFormat, key: &proto::KeyInfo, summary: String) -> String {
    match format {
        OutputFormat::Json => output::json(&KeyView::from(key)),
        OutputFormat::Human => format!("{summary}\n"),
    }
}

/// Runs a `tresor key` command; returns what to print.
pub async fn run_key(
    command: KeyCommand,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let client = &conn.client;
    let key_err = |id: &str| {
        let id = id.to_owned();
        move |e| about_key(e, &id, conn)
    };
    Ok(match command {
        KeyCommand::Create {
            id,
            owner,
            description,
            rotation_period,
            purpose,
            labels,
        } => {
            let request = proto::CreateKeyRequest {
                key_id: id.clone(),
                owner: owner.clone(),
                description,
                rotation_period_seconds: rotation_period.map_or(0, |p| p.as_secs()),
                purpose: proto::KeyPurpose::from(purpose).into(),
                labels: context(&labels),
            };
            let key = client
                .create_key_with(request)
                .await
                .map_err(key_err(&id))?;
            let purpose = match output::purpose_name(key.purpose) {
                "encrypt-decrypt" => String::new(),
                other => format!(", purpose {other}"),
            };
            print_key(
                format,
                &key,
                format!("created key {id} (version 1, owner {owner}{purpose})"),
            )
        }
        KeyCommand::Rotate { id } => {
            let key = client.rotate_key(&id).await.map_err(key_err(&id))?;
            let v = key.primary_version;
            print_key(
                format,
                &key,
                format!("rotated key {id}: primary version is now {v}"),
            )
        }
        KeyCommand::Show { id } => {
            let key = client.get_key(&id).await.map_err(key_err(&id))?;
            match format {
                OutputFormat::Json => output::json(&KeyView::from(&key)),
                OutputFormat::Human => output::key_block(&KeyView::from(&key)),
            }
        }
        KeyCommand::Transfer { id, to, yes } => {
            confirm(
                &format!("Give key {id} to {to} (the current owner loses its use)"),
                yes,
            )?;
            let key = client
                .transfer_key_ownership(&id, &to)
                .await
                .map_err(key_err(&id))?;
            print_key(format, &key, format!("key {id} is owned by {to} now"))
        }
        KeyCommand::SetDescription { id, description } => {
            let key = client
                .update_key_description(&id, &description)
                .await
                .map_err(key_err(&id))?;
            print_key(format, &key, format!("updated the description of key {id}"))
        }
        KeyCommand::SetLabels { id, labels, clear } => {
            let labels = if clear { Vec::new() } else { labels };
            let count = labels.len();
            let key = client
                .set_key_labels(&id, labels)
                .await
                .map_err(key_err(&id))?;
            print_key(format, &key, format!("key {id} has {count} labels now"))
        }
        KeyCommand::List { prefix, labels } => {
            let keys: Vec<KeyView> = client
                .list_keys_matching(&prefix, context(&labels))
                .await
                .map_err(CliError::from)?
                .iter()
                .map(KeyView::from)
                .collect();
            match format {
                OutputFormat::Json => output::json(&serde_json::json!({ "keys": keys })),
                OutputFormat::Human => output::key_table(&keys),
            }
        }
        KeyCommand::Disable { id, yes } => {
            confirm(
                &format!("Disable key {id} (every call using it will fail)"),
                yes,
            )?;
            let key = client.disable_key(&id).await.map_err(key_err(&id))?;
            print_key(format, &key, format!("disabled key {id}"))
        }
        KeyCommand::Enable { id } => {
            let key = client.enable_key(&id).await.map_err(key_err(&id))?;
            print_key(format, &key, format!("enabled key {id}"))
        }
        KeyCommand::SetMinVersion { id, version, yes } => {
            confirm(
                &format!("Refuse decryption of {id} ciphertexts older than version {version}"),
                yes,
            )?;
            let key = client
                .set_min_decryption_version(&id, version)
                .await
                .map_err(key_err(&id))?;
            print_key(
                format,
                &key,
                format!("key {id}: minimum decryption version is now {version}"),
            )
        }
        KeyCommand::SetRotationPeriod { id, period } => {
            let key = client
                .set_rotation_period(&id, period.0)
                .await
                .map_err(key_err(&id))?;
            let summary = match period.0 {
                Some(period) => format!(
                    "key {id} rotates every {}; next rotation at {}",
                    output::period(period),
                    output::timestamp(key.next_rotation_at_unix)
                ),
                None => format!("key {id} rotates only on request now"),
            };
            print_key(format, &key, summary)
        }
        KeyCommand::DestroyVersion { id, version, yes } => {
            confirm(
                &format!(
                    "Destroy version {version} of key {id} (its ciphertexts can never be decrypted again)"
                ),
                yes,
            )?;
            let key = client
                .destroy_key_version(&id, version)
                .await
                .map_err(key_err(&id))?;
            print_key(
                format,
                &key,
                format!("destroyed version {version} of key {id}"),
            )
        }
        KeyCommand::ScheduleDeletion { id, days, yes } => {
            confirm(
                &format!("Schedule key {id} for destruction in {days} days (unusable from now on)"),
                yes,
            )?;
            let key = client
                .schedule_key_deletion(&id, days)
                .await
                .map_err(key_err(&id))?;
            let when = output::timestamp(key.deletion_at_unix);
            print_key(
                format,
                &key,
                format!(
                    "key {id} is pending deletion; it will be destroyed at {when} unless you run `tresor key cancel-deletion {id}`"
                ),
            )
        }
        KeyCommand::CancelDeletion { id } => {
            let key = client
                .cancel_key_deletion(&id)
                .await
                .map_err(key_err(&id))?;
            print_key(
                format,
                &key,
                format!(
                    "cancelled the deletion of key {id}; it is disabled: run `tresor key enable {id}` to use it"
                ),
            )
        }
    })
}

/// Runs a `tresor grant` command; returns what to print.
pub async fn run_grant(
    command: GrantCommand,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let client = &conn.client;
    let names = |ops: &[proto::Operation]| {
        ops.iter()
            .map(|op| output::operation_name(*op))
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(match command {
        GrantCommand::Create {
            id,
            grantee,
            ops,
            context_equals,
            context_subset,
            expires_in,
        } => {
            let expires_at_unix = match expires_in {
                None => 0,
                Some(after) => std::time::SystemTime::now()
                    .checked_add(after)
                    .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|secs| i64::try_from(secs.as_secs()).ok())
                    .ok_or_else(|| CliError::usage("--expires-in is too far in the future"))?,
            };
            let request = proto::GrantRequest {
                key_id: id.clone(),
                grantee: grantee.clone(),
                operations: ops.iter().map(|op| (*op).into()).collect(),
                context_equals: context(&context_equals),
                context_subset: context(&context_subset),
                expires_at_unix,
            };
            let key = client
                .create_grant_with(request)
                .await
                .map_err(|e| about_key(e, &id, conn))?;
            print_key(
                format,
                &key,
                format!("granted {} on {id} to {grantee}", names(&ops)),
            )
        }
        GrantCommand::Revoke { id, grantee, ops } => {
            let key = client
                .revoke_grant(&id, &grantee, &ops)
                .await
                .map_err(|e| about_key(e, &id, conn))?;
            let what = if ops.is_empty() {
                "every operation".to_owned()
            } else {
                names(&ops)
            };
            print_key(
                format,
                &key,
                format!("revoked {what} on {id} from {grantee}"),
            )
        }
        GrantCommand::List { id } => {
            let key = KeyView::from(
                &client
                    .get_key(&id)
                    .await
                    .map_err(|e| about_key(e, &id, conn))?,
            );
            match format {
                OutputFormat::Json => {
                    output::json(&serde_json::json!({ "key_id": key.key_id, "grants": key.grants }))
                }
                OutputFormat::Human if key.grants.is_empty() => format!("no grants on {id}\n"),
                OutputFormat::Human => output::table(&output::grant_rows(&key.grants, "")),
            }
        }
    })
}

/// `tresor root-key ...`
#[derive(Debug, Subcommand)]
pub enum RootKeyCommand {
    /// Make a new root key current and re-wrap every DEK under it in the
    /// background; encrypt and decrypt keep working.
    ///
    /// Example: tresor root-key rotate --wait
    Rotate {
        /// Wait until every DEK is re-wrapped, printing progress.
        #[arg(long)]
        wait: bool,
    },
}

/// Runs `tresor root-key ...`.
pub async fn run_root_key(
    command: RootKeyCommand,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let RootKeyCommand::Rotate { wait } = command;
    let mut status = conn.client.rotate_root_key().await?;
    let generation = status.root_key_generation;
    while wait && status.root_rotation_in_progress {
        if format == OutputFormat::Human {
            eprintln!(
                "re-wrapping: {}/{} DEKs",
                status.root_rotation_rewrapped, status.root_rotation_total
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        status = conn.client.status().await?;
    }
    let view = StatusView::from(&status);
    Ok(match format {
        OutputFormat::Json => output::json(&view),
        OutputFormat::Human => format!(
            "root key rotated to generation {generation}\n{}",
            output::status_block(&view)
        ),
    })
}

/// What to do with the seal.
#[derive(Debug, Clone)]
pub enum SealAction {
    /// Seal (after confirmation).
    Seal {
        /// Skip the confirmation.
        yes: bool,
    },
    /// Approve unsealing.
    Unseal(super::unseal::UnsealArgs),
    /// Only report.
    Status,
}

/// `tresor seal --replica URL...`: seals the server at `--addr` and every
/// replica, trying all of them even when one fails; exit 1 if any failed.
pub async fn seal_replicas(
    connection: &super::connection::ConnectionArgs,
    replicas: Vec<String>,
    yes: bool,
    format: OutputFormat,
) -> Result<(), CliError> {
    let mut addresses: Vec<String> = connection.addr.iter().cloned().collect();
    addresses.extend(replicas);
    confirm(
        &format!(
            "Seal {} replicas (drops all key material; every data-plane call fails until unseal)",
            addresses.len()
        ),
        yes,
    )?;
    let mut results = Vec::new();
    for addr in &addresses {
        let target = super::connection::ConnectionArgs {
            addr: Some(addr.clone()),
            ..connection.clone()
        };
        let outcome = match target.connect().await {
            Ok(conn) => conn.client.seal().await.map_err(CliError::from),
            Err(e) => Err(e),
        };
        results.push((addr.clone(), outcome.map(|_| ()).map_err(|e| e.message)));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let text = match format {
        OutputFormat::Json => output::json(&serde_json::json!({
            "replicas": results.iter().map(|(addr, r)| serde_json::json!({
                "addr": addr,
                "sealed": r.is_ok(),
                "error": r.as_ref().err(),
            })).collect::<Vec<_>>()
        })),
        OutputFormat::Human => results
            .iter()
            .map(|(addr, r)| match r {
                Ok(()) => format!("sealed  {addr}\n"),
                Err(e) => format!("FAILED  {addr}: {e}\n"),
            })
            .collect(),
    };
    super::print(&text)?;
    if failed > 0 {
        return Err(CliError::refused(format!(
            "{failed} of {} replicas could not be sealed",
            addresses.len()
        )));
    }
    Ok(())
}

/// Runs `tresor seal|unseal|status`.
pub async fn run_seal(
    action: SealAction,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let client = &conn.client;
    let (status, summary) = match action {
        SealAction::Seal { yes } => {
            confirm(
                "Seal the server (drops all key material; every data-plane call fails until unseal)",
                yes,
            )?;
            (client.seal().await?, Some("server sealed".to_owned()))
        }
        SealAction::Unseal(args) => {
            let token = args
                .token_file
                .as_deref()
                .map(super::unseal::read_token)
                .transpose()?;
            let status = client
                .unseal_with_token(token.as_ref().map(|t| t.as_str()))
                .await?;
            let summary = super::unseal::summary(&status);
            (status, Some(summary))
        }
        SealAction::Status => (client.status().await?, None),
    };
    let view = StatusView::from(&status);
    Ok(match (format, summary) {
        (OutputFormat::Json, _) => output::json(&view),
        (OutputFormat::Human, Some(summary)) => {
            format!("{summary}\n{}", output::status_block(&view))
        }
        (OutputFormat::Human, None) => output::status_block(&view),
    })
}
