//! `tresor apply`: makes a plan's changes one after the other through the
//! SDK, with the RPC any admin would use, and stops at the first failure
//! (later changes may depend on it: a grant on a key whose creation
//! failed). What was and was not applied is reported change by change;
//! running apply again plans afresh from the server, so it makes only
//! what is still missing.

use serde::Serialize;
use tresor_client::ClientError;
use tresor_proto::v1 as proto;

use super::super::connection::Connection;
use super::super::failure::CliError;
use super::plan::{Change, Plan};
use super::roles;

/// What became of one planned change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The server made it.
    Applied,
    /// The server (or the connection) refused it; apply stopped here.
    Failed,
    /// A change before it failed.
    NotAttempted,
    /// Destructive, and `--prune` was not given.
    NeedsPrune,
}

/// The outcome of each change of a plan, in the plan's order, with the
/// error of the failed one.
pub type Outcomes = Vec<(Outcome, Option<String>)>;

/// How many of `outcomes` are `wanted`.
pub fn count(outcomes: &Outcomes, wanted: Outcome) -> usize {
    outcomes.iter().filter(|(o, _)| *o == wanted).count()
}

/// Makes `plan`'s changes in order until one fails.
pub async fn apply(conn: &Connection, plan: &Plan) -> Outcomes {
    let mut outcomes = Vec::with_capacity(plan.changes.len());
    let mut failed = false;
    for planned in &plan.changes {
        let outcome = if !plan.applies(planned) {
            (Outcome::NeedsPrune, None)
        } else if failed {
            (Outcome::NotAttempted, None)
        } else {
            match execute(conn, &planned.change).await {
                Ok(()) => (Outcome::Applied, None),
                Err(err) => {
                    failed = true;
                    (Outcome::Failed, Some(err.message))
                }
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// Makes one change.
async fn execute(conn: &Connection, change: &Change) -> Result<(), CliError> {
    let client = &conn.client;
    let refused = |subject: &str| {
        let subject = subject.to_owned();
        move |e: ClientError| CliError::about_key(e, &subject, conn.identity.as_ref())
    };
    match change {
        Change::CreateKey { key } => {
            let id = key.id.value.as_str();
            let request = proto::CreateKeyRequest {
                key_id: id.to_owned(),
                owner: key.owner.to_string(),
                description: key.description.clone(),
                rotation_period_seconds: key.rotation_period.map_or(0, |p| p.0),
                purpose: proto::KeyPurpose::from(key.purpose).into(),
                labels: key.labels.0.clone().into_iter().collect(),
            };
            client.create_key_with(request).await.map_err(refused(id))?;
        }
        Change::CancelDeletion { key_id } => {
            client
                .cancel_key_deletion(key_id)
                .await
                .map_err(refused(key_id))?;
        }
        Change::TransferOwnership { key_id, to, .. } => {
            client
                .transfer_key_ownership(key_id, to)
                .await
                .map_err(refused(key_id))?;
        }
        Change::SetDescription { key_id, to, .. } => {
            client
                .update_key_description(key_id, to)
                .await
                .map_err(refused(key_id))?;
        }
        Change::SetLabels { key_id, to, .. } => {
            client
                .set_key_labels(key_id, to.0.clone())
                .await
                .map_err(refused(key_id))?;
        }
        Change::SetRotationPeriod { key_id, to, .. } => {
            client
                .set_rotation_period(key_id, to.map(|p| p.duration()))
                .await
                .map_err(refused(key_id))?;
        }
        Change::EnableKey { key_id } => {
            client.enable_key(key_id).await.map_err(refused(key_id))?;
        }
        Change::DisableKey { key_id } => {
            client.disable_key(key_id).await.map_err(refused(key_id))?;
        }
        Change::Grant { key_id, grant } => {
            client
                .create_grant_with(grant.request(key_id))
                .await
                .map_err(refused(key_id))?;
        }
        Change::Revoke {
            key_id,
            grantee,
            operations,
            restore,
        } => {
            let ops: Vec<proto::Operation> = operations.iter().map(|op| op.0).collect();
            client
                .revoke_grant(key_id, grantee, &ops)
                .await
                .map_err(refused(key_id))?;
            for grant in restore {
                client
                    .create_grant_with(grant.request(key_id))
                    .await
                    .map_err(refused(key_id))?;
            }
        }
        Change::CreateAlias { alias, key_id } => {
            client
                .create_alias(alias, key_id)
                .await
                .map_err(refused(alias))?;
        }
        Change::RepointAlias { alias, to, .. } => {
            client
                .update_alias(alias, to)
                .await
                .map_err(refused(alias))?;
        }
        Change::DeleteAlias { alias, .. } => {
            client.delete_alias(alias).await.map_err(refused(alias))?;
        }
        Change::AddRoleBinding { binding } => roles::add_role_binding(client, binding).await?,
        Change::RemoveRoleBinding { binding } => {
            roles::remove_role_binding(client, binding).await?;
        }
    }
    Ok(())
}
