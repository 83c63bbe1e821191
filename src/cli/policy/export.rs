//! `tresor export`: the server's current state as a policy file, so that
//! `tresor plan` on it finds nothing to change. Only metadata: a key's
//! material never leaves the server, and there is none in a policy file.
//!
//! What is written: every key with its owner, purpose, description,
//! rotation period, labels and grants (expired ones too, with their past
//! `expires_at`); `state: disabled` for disabled keys (enabled keys get no
//! `state`, so a key disabled in an emergency after the export is not
//! re-enabled by the next apply); every alias; the role bindings when the
//! server has any. Keys pending deletion are left out, with their aliases:
//! a policy file never schedules deletions.

use super::file::{
    AliasEntry, AliasText, FileVersion, KeyIdText, KeyStateSpec, PolicyFile, unspanned,
};
use super::state::ServerState;

/// Written at the top of every exported file.
const HEADER: &str = "# tresor policy file, written by `tresor export`.\n# Check it with `tresor plan -f FILE`; the format is in docs/POLICY.md.\n";

/// The policy file that declares `state`, and the ids of the keys left out
/// (pending deletion).
pub fn export(state: &ServerState) -> (PolicyFile, Vec<String>) {
    let mut skipped = Vec::new();
    let mut keys = Vec::new();
    for (id, key) in &state.keys {
        if key.pending_deletion {
            skipped.push(id.clone());
            continue;
        }
        let mut entry = key.entry.clone();
        if entry.state == Some(KeyStateSpec::Enabled) {
            entry.state = None;
        }
        keys.push(entry);
    }
    let aliases = state
        .aliases
        .iter()
        .filter(|(_, key)| !skipped.contains(key))
        .map(|(alias, key)| AliasEntry {
            alias: unspanned(AliasText::from_server(alias)),
            key: unspanned(KeyIdText::from_server(key)),
        })
        .collect();
    let roles = state.roles.clone().filter(|roles| !roles.is_empty());
    let file = PolicyFile {
        version: FileVersion::CURRENT,
        keys,
        aliases,
        roles,
    };
    (file, skipped)
}

/// The file's YAML text, with a header comment.
pub fn to_yaml(file: &PolicyFile) -> Result<String, String> {
    let body = serde_saphyr::to_string(file).map_err(|e| format!("cannot write YAML: {e}"))?;
    Ok(format!("{HEADER}{body}"))
}
