//! How plans and apply reports read: one line per change, `+` adds, `~`
//! changes, `-` takes away (terraform's way), or one JSON document with
//! `--output json`.

use serde::Serialize;

use super::super::output;
use super::apply::{Outcome, Outcomes, count};
use super::file::{GrantEntry, op_names};
use super::plan::{Change, Plan, Planned};

/// `+`, `~` or `-`.
pub fn sigil(change: &Change) -> char {
    match change {
        Change::CreateKey { .. }
        | Change::Grant { .. }
        | Change::CreateAlias { .. }
        | Change::AddRoleBinding { .. } => '+',
        Change::DisableKey { .. }
        | Change::Revoke { .. }
        | Change::DeleteAlias { .. }
        | Change::RemoveRoleBinding { .. } => '-',
        _ => '~',
    }
}

/// A grant's operations and conditions: `decrypt (context_subset
/// tenant=42, expires 2027-01-01T00:00:00Z)`.
fn grant_terms(grant: &GrantEntry) -> String {
    let pairs = |name: &str, map: &Option<std::collections::BTreeMap<String, String>>| {
        map.as_ref().map(|map| {
            let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{name} {}", pairs.join(","))
        })
    };
    let conditions: Vec<String> = [
        pairs("context_equals", &grant.context_equals),
        pairs("context_subset", &grant.context_subset),
        grant.expires_at.map(|at| format!("expires {at}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let ops = op_names(&grant.operations);
    if conditions.is_empty() {
        ops
    } else {
        format!("{ops} ({})", conditions.join(", "))
    }
}

fn rotation(period: Option<super::file::Period>) -> String {
    period.map_or_else(|| "on request".to_owned(), |p| p.to_string())
}

/// One line saying what a change does, after its sigil.
pub fn summary(change: &Change) -> String {
    match change {
        Change::CreateKey { key } => {
            let mut parts = vec![format!("owner {}", key.owner)];
            parts.push(format!("purpose {}", key.purpose.name()));
            if let Some(period) = key.rotation_period {
                parts.push(format!("rotates every {period}"));
            }
            if !key.labels.is_empty() {
                parts.push(format!("labels {}", key.labels.summary()));
            }
            if !key.description.is_empty() {
                parts.push(format!("description {:?}", key.description));
            }
            format!("key {} ({})", key.id.value, parts.join(", "))
        }
        Change::CancelDeletion { key_id } => {
            format!("key {key_id}: cancel its scheduled deletion (it comes back disabled)")
        }
        Change::TransferOwnership { key_id, from, to } => {
            format!("key {key_id}: owner {from} -> {to}")
        }
        Change::SetDescription { key_id, from, to } => {
            format!("key {key_id}: description {from:?} -> {to:?}")
        }
        Change::SetLabels { key_id, from, to } => {
            format!(
                "key {key_id}: labels {} -> {}",
                from.summary(),
                to.summary()
            )
        }
        Change::SetRotationPeriod { key_id, from, to } => format!(
            "key {key_id}: rotation_period {} -> {}",
            rotation(*from),
            rotation(*to)
        ),
        Change::EnableKey { key_id } => format!("key {key_id}: enable"),
        Change::DisableKey { key_id } => format!("key {key_id}: disable"),
        Change::Grant { key_id, grant } => {
            format!(
                "grant on {key_id} to {}: {}",
                grant.grantee.value,
                grant_terms(grant)
            )
        }
        Change::Revoke {
            key_id,
            grantee,
            operations,
            restore,
        } => {
            let mut line = format!(
                "grant on {key_id} to {grantee}: revoke {}",
                op_names(operations)
            );
            if !restore.is_empty() {
                let again: Vec<String> = restore.iter().map(grant_terms).collect();
                line.push_str(&format!(" (then grant back {})", again.join("; ")));
            }
            line
        }
        Change::CreateAlias { alias, key_id } => format!("alias {alias} -> {key_id}"),
        Change::RepointAlias { alias, from, to } => format!("alias {alias}: {from} -> {to}"),
        Change::DeleteAlias { alias, key_id } => format!("alias {alias} (-> {key_id})"),
        Change::AddRoleBinding { binding } | Change::RemoveRoleBinding { binding } => {
            format!("role {} for {}", binding.role.as_str(), binding.identity)
        }
    }
}

/// A change as `--output json` prints it.
#[derive(Serialize)]
struct ChangeView<'a> {
    #[serde(flatten)]
    change: &'a Change,
    sigil: String,
    summary: String,
    destructive: bool,
    /// Whether apply (with the same flags) makes it.
    applies: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn view<'a>(
    plan: &Plan,
    planned: &'a Planned,
    outcome: Option<&'a (Outcome, Option<String>)>,
) -> ChangeView<'a> {
    ChangeView {
        change: &planned.change,
        sigil: sigil(&planned.change).to_string(),
        summary: summary(&planned.change),
        destructive: planned.destructive,
        applies: plan.applies(planned),
        outcome: outcome.map(|(o, _)| *o),
        error: outcome.and_then(|(_, e)| e.as_deref()),
    }
}

/// The plan (and, after apply, what became of each change) as JSON.
pub fn json(plan: &Plan, file: &str, outcomes: Option<&Outcomes>) -> String {
    let changes: Vec<ChangeView<'_>> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, planned)| view(plan, planned, outcomes.and_then(|o| o.get(i))))
        .collect();
    let (to_apply, needs_prune) = plan.counts();
    let mut document = serde_json::json!({
        "file": file,
        "prune": plan.prune,
        "changes": changes,
        "to_apply": to_apply,
        "needs_prune": needs_prune,
        "notes": plan.notes,
        "unmanaged_keys": plan.unmanaged_keys,
    });
    if let (Some(outcomes), Some(fields)) = (outcomes, document.as_object_mut()) {
        for (name, wanted) in [
            ("applied", Outcome::Applied),
            ("failed", Outcome::Failed),
            ("not_attempted", Outcome::NotAttempted),
        ] {
            fields.insert(name.to_owned(), count(outcomes, wanted).into());
        }
    }
    output::json(&document)
}

/// The closing line: `done` when there is something to apply.
fn closing(plan: &Plan, file: &str, done: String) -> String {
    let (to_apply, needs_prune) = plan.counts();
    let held = format!("{needs_prune} destructive changes not applied without --prune");
    let line = match (to_apply, needs_prune) {
        (0, 0) => format!("No changes: the server matches {file}."),
        (0, _) => format!("No changes to apply; {held}."),
        (_, 0) => format!("{done}."),
        (_, _) => format!("{done}; {held}."),
    };
    format!("{line}\n{}", footer(plan))
}

/// The plan for people.
pub fn plan_text(plan: &Plan, file: &str) -> String {
    let mut text = String::new();
    for planned in &plan.changes {
        let held = if plan.applies(planned) {
            ""
        } else {
            "   (not applied without --prune)"
        };
        text.push_str(&format!(
            "  {} {}{held}\n",
            sigil(&planned.change),
            summary(&planned.change)
        ));
    }
    let (to_apply, _) = plan.counts();
    text.push_str(&closing(plan, file, format!("Plan: {to_apply} to apply")));
    text
}

/// What became of each change, for people.
pub fn apply_text(plan: &Plan, file: &str, outcomes: &Outcomes) -> String {
    let mut text = String::new();
    for (planned, (outcome, error)) in plan.changes.iter().zip(outcomes) {
        let status = match outcome {
            Outcome::Applied => "applied",
            Outcome::Failed => "FAILED",
            Outcome::NotAttempted => "not attempted",
            Outcome::NeedsPrune => "needs --prune",
        };
        let line = format!(
            "{status:<14} {} {}",
            sigil(&planned.change),
            summary(&planned.change)
        );
        match error {
            Some(error) => text.push_str(&format!("{line}\n{:<15}{error}\n", "")),
            None => text.push_str(&format!("{line}\n")),
        }
    }
    let done = format!(
        "Apply: {} applied, {} failed, {} not attempted",
        count(outcomes, Outcome::Applied),
        count(outcomes, Outcome::Failed),
        count(outcomes, Outcome::NotAttempted)
    );
    text.push_str(&closing(plan, file, done));
    text
}

/// Notes and the unmanaged keys.
fn footer(plan: &Plan) -> String {
    let mut text = String::new();
    for note in &plan.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    let unmanaged = &plan.unmanaged_keys;
    if !unmanaged.is_empty() {
        const SHOWN: usize = 10;
        let mut ids = unmanaged
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if unmanaged.len() > SHOWN {
            ids.push_str(&format!(" and {} more", unmanaged.len() - SHOWN));
        }
        text.push_str(&format!(
            "note: {} keys on the server are not in the file and are left alone: {ids}\n",
            unmanaged.len()
        ));
    }
    text
}
