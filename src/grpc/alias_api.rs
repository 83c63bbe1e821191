//! The alias calls of `tresor.v1.Admin` (CreateAlias, UpdateAlias,
//! DeleteAlias, ListAliases): the handlers' bodies. Records name the
//! alias as their key id and the target key in their detail.

use tonic::{Request, Response, Status};

use super::admin_api::AdminApi;
use super::audited::{Answer, Subject, audited};
use super::convert;
use crate::model::{Alias, AliasName, Rpc};
use tresor_proto::v1::{
    AliasInfo, AliasRequest, DeleteAliasRequest, DeleteAliasResponse, ListAliasesRequest,
    ListAliasesResponse,
};

/// A validated alias name from a request field.
fn alias_name(raw: &str) -> Result<AliasName, Status> {
    AliasName::parse(raw).map_err(convert::in_field("alias"))
}

/// An alias as the API shows it.
fn alias_info(alias: &Alias) -> AliasInfo {
    AliasInfo {
        alias: alias.name.to_string(),
        key_id: alias.key_id.to_string(),
        created_at_unix: alias.created_at,
        updated_at_unix: alias.updated_at,
    }
}

/// What a create or update record shows: the alias, and the key it is
/// pointed at.
fn pointing(req: &AliasRequest) -> Subject {
    Subject {
        detail: Some(format!("to {}", req.key_id)),
        ..Subject::key(&req.alias)
    }
}

impl AdminApi {
    /// CreateAlias or UpdateAlias.
    pub(super) async fn handle_point_alias(
        &self,
        rpc: Rpc,
        request: Request<AliasRequest>,
    ) -> Result<Response<AliasInfo>, Status> {
        let service = self.service();
        audited(
            service,
            rpc,
            request,
            pointing,
            |identity, req| async move {
                let name = alias_name(&req.alias)?;
                let key_id = convert::key_id(&req.key_id)?;
                let alias = if rpc == Rpc::CreateAlias {
                    service.create_alias(&identity, &name, &key_id).await?
                } else {
                    service.update_alias(&identity, &name, &key_id).await?
                };
                Ok(Answer::new(alias_info(&alias)))
            },
        )
        .await
    }

    /// DeleteAlias.
    pub(super) async fn handle_delete_alias(
        &self,
        request: Request<DeleteAliasRequest>,
    ) -> Result<Response<DeleteAliasResponse>, Status> {
        let service = self.service();
        audited(
            service,
            Rpc::DeleteAlias,
            request,
            |req| Subject::key(&req.alias),
            |identity, req| async move {
                let name = alias_name(&req.alias)?;
                service.delete_alias(&identity, &name).await?;
                Ok(Answer::new(DeleteAliasResponse {}))
            },
        )
        .await
    }

    /// ListAliases.
    pub(super) async fn handle_list_aliases(
        &self,
        request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        let service = self.service();
        audited(
            service,
            Rpc::ListAliases,
            request,
            |_| Subject::default(),
            |identity, req| async move {
                let page = service
                    .list_aliases(
                        &identity,
                        &req.prefix,
                        req.page_size,
                        convert::page_start_of(&req.page_token, AliasName::parse)?,
                    )
                    .await?;
                Ok(Answer::new(ListAliasesResponse {
                    aliases: page.aliases.iter().map(alias_info).collect(),
                    next_page_token: page
                        .next_after
                        .map(|last| convert::page_token(last.as_str()))
                        .unwrap_or_default(),
                }))
            },
        )
        .await
    }
}
