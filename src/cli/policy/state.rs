//! What the server has now, read through the SDK as any admin would
//! (ListKeys, ListAliases, and the role bindings through [`super::roles`]),
//! in the policy file's own types so a plan compares like with like.

use std::collections::BTreeMap;

use tresor_client::Client;
use tresor_proto::v1 as proto;

use super::super::failure::CliError;
use super::super::keys::PurposeArg;
use super::file::{
    GrantEntry, GranteeText, IdentityText, KeyEntry, KeyIdText, KeyStateSpec, LabelMap, Op, Period,
    RoleEntry, Timestamp, unspanned,
};
use super::roles;

/// A key as the server has it.
#[derive(Debug, Clone)]
pub struct ServerKey {
    /// Its metadata and grants, as a file would declare them (`state` is
    /// always set).
    pub entry: KeyEntry,
    /// It is scheduled for deletion (`entry.state` is then `Disabled`,
    /// what cancelling the deletion leaves).
    pub pending_deletion: bool,
}

/// Everything a policy file can declare, as the server has it now.
#[derive(Debug, Clone, Default)]
pub struct ServerState {
    /// Every key, by id.
    pub keys: BTreeMap<String, ServerKey>,
    /// Every alias and the key it points at.
    pub aliases: BTreeMap<String, String>,
    /// The role bindings, when they were read.
    pub roles: Option<Vec<RoleEntry>>,
}

/// Reads the server's keys and aliases, and its role bindings when
/// `with_roles`.
pub async fn read(client: &Client, with_roles: bool) -> Result<ServerState, CliError> {
    let mut keys = BTreeMap::new();
    for info in client.list_keys("").await? {
        keys.insert(info.key_id.clone(), server_key(&info)?);
    }
    let aliases = client
        .list_aliases("")
        .await?
        .into_iter()
        .map(|alias| (alias.alias, alias.key_id))
        .collect();
    let roles = if with_roles {
        let mut bindings = roles::current_role_bindings(client).await?;
        bindings.sort();
        Some(bindings)
    } else {
        None
    };
    Ok(ServerState {
        keys,
        aliases,
        roles,
    })
}

/// A key's metadata as the file's types say it.
fn server_key(info: &proto::KeyInfo) -> Result<ServerKey, CliError> {
    let unknown = |what: &str| {
        CliError::refused(format!(
            "key {} has {what} this tresor does not know: upgrade the tresor CLI",
            info.key_id
        ))
    };
    let purpose = PurposeArg::from_proto(info.purpose).ok_or_else(|| unknown("a purpose"))?;
    let (state, pending_deletion) = match proto::KeyState::try_from(info.state) {
        Ok(proto::KeyState::Enabled) => (KeyStateSpec::Enabled, false),
        Ok(proto::KeyState::Disabled) => (KeyStateSpec::Disabled, false),
        Ok(proto::KeyState::PendingDeletion) => (KeyStateSpec::Disabled, true),
        _ => return Err(unknown("a state")),
    };
    let grants = info
        .grants
        .iter()
        .map(|grant| server_grant(grant).ok_or_else(|| unknown("a grant operation")))
        .collect::<Result<_, _>>()?;
    let entry = KeyEntry {
        id: unspanned(KeyIdText::from_server(&info.key_id)),
        owner: IdentityText::from_server(&info.owner),
        purpose,
        description: info.description.clone(),
        rotation_period: (info.rotation_period_seconds > 0)
            .then_some(Period(info.rotation_period_seconds)),
        state: Some(state),
        labels: LabelMap(info.labels.clone().into_iter().collect()),
        grants,
    };
    Ok(ServerKey {
        entry,
        pending_deletion,
    })
}

/// A grant as the file's types say it (`None` for an operation this CLI
/// does not know).
fn server_grant(grant: &proto::Grant) -> Option<GrantEntry> {
    let operations = grant
        .operations
        .iter()
        .map(|raw| {
            proto::Operation::try_from(*raw)
                .ok()
                .filter(|op| *op != proto::Operation::Unspecified)
                .map(Op)
        })
        .collect::<Option<_>>()?;
    let pairs = |map: &std::collections::HashMap<String, String>| {
        (!map.is_empty()).then(|| map.clone().into_iter().collect())
    };
    Some(GrantEntry {
        grantee: unspanned(GranteeText::from_server(&grant.grantee)),
        operations,
        context_equals: pairs(&grant.context_equals),
        context_subset: pairs(&grant.context_subset),
        expires_at: (grant.expires_at_unix > 0).then_some(Timestamp(grant.expires_at_unix)),
    })
}
