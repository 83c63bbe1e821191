//! Role bindings: who holds the `admin`, `security-officer` and
//! `auditor` roles on the control plane.

use super::{Client, ClientError, Idempotency, proto};

impl Client {
    /// Gives `role` (`admin`, `security-officer`, `auditor`) to
    /// `identity`, an identity or a pattern `spiffe://TD/PATH/*`. Admins
    /// only; an admin cannot give itself a role it does not hold.
    pub async fn add_role_binding(
        &self,
        role: &str,
        identity: &str,
    ) -> Result<proto::RoleBinding, ClientError> {
        // Not idempotent: a second run after a lost answer says it exists.
        self.admin_rpc(
            Idempotency::Unsafe,
            role_binding_request(role, identity),
            |mut a, r| async move { a.add_role_binding(r).await },
        )
        .await
    }

    /// Takes `role` back from `identity` (the exact grantee it was bound
    /// to). Admins only.
    pub async fn remove_role_binding(&self, role: &str, identity: &str) -> Result<(), ClientError> {
        // A second run after a lost answer says NOT_FOUND: not retried.
        self.admin_rpc(
            Idempotency::Unsafe,
            role_binding_request(role, identity),
            |mut a, r| async move { a.remove_role_binding(r).await },
        )
        .await
        .map(drop)
    }

    /// Every role binding. Any role holder.
    pub async fn list_role_bindings(&self) -> Result<Vec<proto::RoleBinding>, ClientError> {
        self.admin_rpc(
            Idempotency::Safe,
            proto::ListRoleBindingsRequest {},
            |mut a, r| async move { a.list_role_bindings(r).await },
        )
        .await
        .map(|answer| answer.bindings)
    }
}

fn role_binding_request(role: &str, identity: &str) -> proto::RoleBindingRequest {
    proto::RoleBindingRequest {
        role: role.to_owned(),
        identity: identity.to_owned(),
    }
}
