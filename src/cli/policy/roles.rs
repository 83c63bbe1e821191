//! Role bindings for `tresor plan|apply|export`: the only place the policy
//! commands touch them, through the SDK's role-binding calls.

use tresor_client::Client;

use super::super::failure::CliError;
use super::file::RoleEntry;
use super::values::{GranteeText, RoleName};

/// One role given to an identity or a pattern, as a policy file says it.
pub type RoleBindingSpec = RoleEntry;

/// The role bindings the server has now.
pub async fn current_role_bindings(client: &Client) -> Result<Vec<RoleBindingSpec>, CliError> {
    client
        .list_role_bindings()
        .await?
        .iter()
        .map(|binding| {
            let role = [
                RoleName::Admin,
                RoleName::SecurityOfficer,
                RoleName::Auditor,
            ]
            .into_iter()
            .find(|role| role.as_str() == binding.role)
            .ok_or_else(|| {
                CliError::refused(format!(
                    "the server has a role this tresor does not know: {:?}; upgrade tresor",
                    binding.role
                ))
            })?;
            Ok(RoleEntry {
                role,
                identity: GranteeText::from_server(&binding.identity),
            })
        })
        .collect()
}

/// Binds a role.
pub async fn add_role_binding(client: &Client, binding: &RoleBindingSpec) -> Result<(), CliError> {
    client
        .add_role_binding(binding.role.as_str(), binding.identity.as_str())
        .await?;
    Ok(())
}

/// Removes a binding.
pub async fn remove_role_binding(
    client: &Client,
    binding: &RoleBindingSpec,
) -> Result<(), CliError> {
    client
        .remove_role_binding(binding.role.as_str(), binding.identity.as_str())
        .await?;
    Ok(())
}
