//! The plan: the changes that turn the server's state into what a policy
//! file declares, each marked destructive or not. Computing it decides
//! nothing about authorization: `tresor apply` makes each change with the
//! RPC any admin would use, and the server allows or refuses it.
//!
//! Scope: the file manages the keys it declares (their metadata, state
//! and grants), the aliases of those keys, and the role bindings when it
//! has a `roles:` section. Keys it does not declare are never touched,
//! `--prune` or not (they are listed as unmanaged); nor are their aliases.

use std::collections::BTreeSet;

use serde::Serialize;

use super::super::failure::CliError;
use super::file::{
    GrantEntry, KeyEntry, KeyStateSpec, LabelMap, Op, Period, PolicyFile, RoleEntry,
};
use super::grants::grant_changes;
use super::state::{ServerKey, ServerState};

/// One change, as `tresor apply` would make it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// CreateKey (with owner, purpose, description, rotation, labels).
    CreateKey {
        /// The key as declared, without its grants (separate changes).
        key: KeyEntry,
    },
    /// CancelKeyDeletion: the file declares a key pending deletion.
    CancelDeletion {
        /// The key.
        key_id: String,
    },
    /// TransferKeyOwnership.
    TransferOwnership {
        /// The key.
        key_id: String,
        /// The owner now.
        from: String,
        /// The owner the file names.
        to: String,
    },
    /// UpdateKeyDescription.
    SetDescription {
        /// The key.
        key_id: String,
        /// The description now.
        from: String,
        /// The file's.
        to: String,
    },
    /// SetKeyLabels.
    SetLabels {
        /// The key.
        key_id: String,
        /// The labels now.
        from: LabelMap,
        /// The file's.
        to: LabelMap,
    },
    /// SetRotationPeriod.
    SetRotationPeriod {
        /// The key.
        key_id: String,
        /// The period now (null: only on request).
        from: Option<Period>,
        /// The file's.
        to: Option<Period>,
    },
    /// EnableKey.
    EnableKey {
        /// The key.
        key_id: String,
    },
    /// DisableKey.
    DisableKey {
        /// The key.
        key_id: String,
    },
    /// CreateGrant: a new grant, or operations added to one.
    Grant {
        /// The key.
        key_id: String,
        /// The grant, with only the operations to add.
        grant: GrantEntry,
    },
    /// RevokeGrant of `operations` from every grant of `grantee`, then
    /// CreateGrant of each `restore` grant.
    Revoke {
        /// The key.
        key_id: String,
        /// The grantee.
        grantee: String,
        /// The operations taken away.
        operations: BTreeSet<Op>,
        /// The grantee's grants in the file that lose operations they
        /// keep, given back right after.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        restore: Vec<GrantEntry>,
    },
    /// CreateAlias.
    CreateAlias {
        /// The alias.
        alias: String,
        /// The key.
        key_id: String,
    },
    /// UpdateAlias.
    RepointAlias {
        /// The alias.
        alias: String,
        /// The key it points at now.
        from: String,
        /// The file's.
        to: String,
    },
    /// DeleteAlias.
    DeleteAlias {
        /// The alias.
        alias: String,
        /// The key it pointed at.
        key_id: String,
    },
    /// Binds a role.
    AddRoleBinding {
        /// The binding.
        binding: RoleEntry,
    },
    /// Removes a role binding.
    RemoveRoleBinding {
        /// The binding.
        binding: RoleEntry,
    },
}

/// A change, and whether it takes something away (applied only with
/// `--prune`).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The change.
    pub change: Change,
    /// It disables a key, revokes, deletes an alias or removes a binding.
    pub destructive: bool,
}

impl Planned {
    /// A change that only adds or updates.
    pub fn additive(change: Change) -> Self {
        Self {
            change,
            destructive: false,
        }
    }

    /// A change that takes something away.
    pub fn destructive(change: Change) -> Self {
        Self {
            change,
            destructive: true,
        }
    }
}

/// Every change, in the order `tresor apply` makes them.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The changes: role bindings added, then each key in the file's order
    /// (creation or restoration, metadata, state, revocations, grants),
    /// then aliases, then role bindings removed.
    pub changes: Vec<Planned>,
    /// Whether destructive changes are applied (`--prune`).
    pub prune: bool,
    /// Remarks that are not changes (expired grants).
    pub notes: Vec<String>,
    /// Keys on the server the file does not declare (left alone).
    pub unmanaged_keys: Vec<String>,
}

impl Plan {
    /// Whether `tresor apply` with the same flags makes `planned`.
    pub fn applies(&self, planned: &Planned) -> bool {
        self.prune || !planned.destructive
    }

    /// How many changes apply, and how many wait for `--prune`.
    pub fn counts(&self) -> (usize, usize) {
        let applied = self.changes.iter().filter(|c| self.applies(c)).count();
        (applied, self.changes.len() - applied)
    }
}

/// The plan that turns `state` into what `file` declares. Fails (before
/// anything is applied) when the file asks for what no RPC can do: a
/// different purpose for an existing key.
pub fn plan(
    file: &PolicyFile,
    state: &ServerState,
    prune: bool,
    now: i64,
) -> Result<Plan, CliError> {
    let mut plan = Plan {
        prune,
        ..Plan::default()
    };
    let mut errors = Vec::new();
    let (add_roles, remove_roles) = role_changes(file, state);
    plan.changes.extend(add_roles);
    for want in &file.keys {
        let have = state.keys.get(want.id.value.as_str());
        match key_changes(want, have, now) {
            Ok((changes, notes)) => {
                plan.changes.extend(changes);
                plan.notes.extend(notes);
            }
            Err(message) => errors.push(message),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::refused(format!(
            "the file asks for what cannot be done (nothing was applied):\n{}",
            errors.join("\n")
        )));
    }
    let declared: BTreeSet<&str> = file.keys.iter().map(|k| k.id.value.as_str()).collect();
    plan.changes.extend(alias_changes(file, state, &declared));
    plan.changes.extend(remove_roles);
    plan.unmanaged_keys = state
        .keys
        .keys()
        .filter(|id| !declared.contains(id.as_str()))
        .cloned()
        .collect();
    Ok(plan)
}

/// Changes of one key: its creation, or what differs from the server's.
fn key_changes(
    want: &KeyEntry,
    have: Option<&ServerKey>,
    now: i64,
) -> Result<(Vec<Planned>, Vec<String>), String> {
    let key_id = want.id.value.as_str().to_owned();
    let id = || key_id.clone();
    let Some(have) = have else {
        let mut changes = vec![Planned::additive(Change::CreateKey {
            key: KeyEntry {
                state: None,
                grants: Vec::new(),
                ..want.clone()
            },
        })];
        if want.state == Some(KeyStateSpec::Disabled) {
            // Nobody uses a key created a moment ago: not destructive.
            changes.push(Planned::additive(Change::DisableKey { key_id: id() }));
        }
        let (grants, notes) = grant_changes(&key_id, &want.grants, &[], now);
        changes.extend(grants);
        return Ok((changes, notes));
    };
    let current = &have.entry;
    if current.purpose != want.purpose {
        return Err(format!(
            "purpose of key {key_id} is {}, the file says {}; purpose cannot change (create a new key instead)",
            current.purpose.name(),
            want.purpose.name()
        ));
    }
    let mut changes = Vec::new();
    if have.pending_deletion {
        changes.push(Planned::additive(Change::CancelDeletion { key_id: id() }));
    }
    changes.extend(update(&current.owner, &want.owner, |from, to| {
        Change::TransferOwnership {
            key_id: id(),
            from: from.to_string(),
            to: to.to_string(),
        }
    }));
    changes.extend(update(
        &current.description,
        &want.description,
        |from, to| Change::SetDescription {
            key_id: id(),
            from,
            to,
        },
    ));
    changes.extend(update(&current.labels, &want.labels, |from, to| {
        Change::SetLabels {
            key_id: id(),
            from,
            to,
        }
    }));
    changes.extend(update(
        &current.rotation_period,
        &want.rotation_period,
        |from, to| Change::SetRotationPeriod {
            key_id: id(),
            from,
            to,
        },
    ));
    match (want.state, current.state) {
        (Some(KeyStateSpec::Enabled), Some(KeyStateSpec::Disabled)) => {
            changes.push(Planned::additive(Change::EnableKey { key_id: id() }));
        }
        (Some(KeyStateSpec::Disabled), Some(KeyStateSpec::Enabled)) => {
            changes.push(Planned::destructive(Change::DisableKey { key_id: id() }));
        }
        _ => {}
    }
    let (grants, notes) = grant_changes(&key_id, &want.grants, &current.grants, now);
    changes.extend(grants);
    Ok((changes, notes))
}

/// The change `make` builds from the current and the wanted value, when
/// they differ.
fn update<T: PartialEq + Clone>(
    current: &T,
    wanted: &T,
    make: impl FnOnce(T, T) -> Change,
) -> Option<Planned> {
    (current != wanted).then(|| Planned::additive(make(current.clone(), wanted.clone())))
}

/// Aliases created or repointed as the file says; aliases of declared
/// keys that the file does not list, deleted (destructive).
fn alias_changes(
    file: &PolicyFile,
    state: &ServerState,
    declared: &BTreeSet<&str>,
) -> Vec<Planned> {
    let mut changes = Vec::new();
    let mut listed = BTreeSet::new();
    for entry in &file.aliases {
        let (alias, key) = (entry.alias.value.as_str(), entry.key.value.as_str());
        listed.insert(alias);
        match state.aliases.get(alias) {
            None => changes.push(Planned::additive(Change::CreateAlias {
                alias: alias.to_owned(),
                key_id: key.to_owned(),
            })),
            Some(now) if now != key => changes.push(Planned::additive(Change::RepointAlias {
                alias: alias.to_owned(),
                from: now.clone(),
                to: key.to_owned(),
            })),
            Some(_) => {}
        }
    }
    for (alias, key) in &state.aliases {
        if !listed.contains(alias.as_str()) && declared.contains(key.as_str()) {
            changes.push(Planned::destructive(Change::DeleteAlias {
                alias: alias.clone(),
                key_id: key.clone(),
            }));
        }
    }
    changes
}

/// Bindings to add and bindings to remove (destructive), when the file
/// has a `roles:` section.
fn role_changes(file: &PolicyFile, state: &ServerState) -> (Vec<Planned>, Vec<Planned>) {
    let (Some(want), Some(have)) = (&file.roles, &state.roles) else {
        return (Vec::new(), Vec::new());
    };
    let want: BTreeSet<&RoleEntry> = want.iter().collect();
    let have: BTreeSet<&RoleEntry> = have.iter().collect();
    let add = want
        .difference(&have)
        .map(|b| {
            Planned::additive(Change::AddRoleBinding {
                binding: (*b).clone(),
            })
        })
        .collect();
    let remove = have
        .difference(&want)
        .map(|b| {
            Planned::destructive(Change::RemoveRoleBinding {
                binding: (*b).clone(),
            })
        })
        .collect();
    (add, remove)
}
