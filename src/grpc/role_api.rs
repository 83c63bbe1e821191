//! The role-binding calls of `tresor.v1.Admin` (AddRoleBinding,
//! RemoveRoleBinding, ListRoleBindings): the handlers' bodies. Records
//! show the role and the grantee in their detail.

use tonic::{Request, Response, Status};

use super::admin_api::AdminApi;
use super::audited::{Answer, Subject, audited};
use super::convert;
use crate::model::{Grantee, Role, RoleBinding, Rpc};
use tresor_proto::v1::{
    ListRoleBindingsRequest, ListRoleBindingsResponse, RemoveRoleBindingResponse,
    RoleBinding as RoleBindingInfo, RoleBindingRequest,
};

/// Longest grantee text an audit record quotes (identities are at most
/// 1024 bytes; anything longer is refused anyway).
const MAX_QUOTED: usize = 1100;

/// The role and grantee a request names, validated.
fn binding_of(req: &RoleBindingRequest) -> Result<(Role, Grantee), Status> {
    let role = Role::parse(&req.role).map_err(convert::in_field("role"))?;
    let grantee = Grantee::parse(&req.identity).map_err(convert::in_field("identity"))?;
    Ok((role, grantee))
}

/// What the audit record of an add or remove shows.
fn subject(req: &RoleBindingRequest) -> Subject {
    let quote = |text: &str, max: usize| text.chars().take(max).collect::<String>();
    Subject::detail(format!(
        "role {} to {}",
        quote(&req.role, 32),
        quote(&req.identity, MAX_QUOTED)
    ))
}

/// A binding as the API shows it.
fn binding_info(binding: &RoleBinding) -> RoleBindingInfo {
    RoleBindingInfo {
        role: binding.role.as_str().to_owned(),
        identity: binding.grantee.to_string(),
        created_at_unix: binding.created_at,
        created_by: binding.created_by.to_string(),
    }
}

impl AdminApi {
    /// AddRoleBinding.
    pub(super) async fn handle_add_role_binding(
        &self,
        request: Request<RoleBindingRequest>,
    ) -> Result<Response<RoleBindingInfo>, Status> {
        let service = self.service();
        audited(
            service,
            Rpc::AddRoleBinding,
            request,
            subject,
            |identity, req| async move {
                let (role, grantee) = binding_of(&req)?;
                let binding = service.add_role_binding(&identity, role, grantee).await?;
                Ok(Answer::new(binding_info(&binding)))
            },
        )
        .await
    }

    /// RemoveRoleBinding.
    pub(super) async fn handle_remove_role_binding(
        &self,
        request: Request<RoleBindingRequest>,
    ) -> Result<Response<RemoveRoleBindingResponse>, Status> {
        let service = self.service();
        audited(
            service,
            Rpc::RemoveRoleBinding,
            request,
            subject,
            |identity, req| async move {
                let (role, grantee) = binding_of(&req)?;
                service
                    .remove_role_binding(&identity, role, &grantee)
                    .await?;
                Ok(Answer::new(RemoveRoleBindingResponse {}))
            },
        )
        .await
    }

    /// ListRoleBindings.
    pub(super) async fn handle_list_role_bindings(
        &self,
        request: Request<ListRoleBindingsRequest>,
    ) -> Result<Response<ListRoleBindingsResponse>, Status> {
        let service = self.service();
        audited(
            service,
            Rpc::ListRoleBindings,
            request,
            |_| Subject::default(),
            |identity, _| async move {
                let bindings = service.list_role_bindings(&identity).await?;
                Ok(Answer::new(ListRoleBindingsResponse {
                    bindings: bindings.iter().map(binding_info).collect(),
                }))
            },
        )
        .await
    }
}
