//! The `tresor.v1.Admin` service: control-plane handlers.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::admin_server::Admin;
use super::proto::{
    CreateKeyRequest, GrantRequest, KeyInfo, KeyRequest, ListKeysRequest, ListKeysResponse,
    ScheduleKeyDeletionRequest, SealRequest, SealStatus, SetMinDecryptionVersionRequest,
    StatusRequest, UnsealRequest,
};
use super::{caller_identity, convert};
use crate::service::Service;

/// Handlers of the control plane.
#[derive(Debug, Clone)]
pub struct AdminApi {
    service: Arc<Service>,
}

impl AdminApi {
    /// Handlers over `service`.
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    async fn seal_status(
        &self,
        identity: &crate::identity::Identity,
    ) -> Result<SealStatus, Status> {
        let status = self.service.status(identity).await?;
        Ok(SealStatus {
            sealed: status.sealed,
            key_count: status.key_count,
            server_version: status.server_version.to_owned(),
        })
    }
}

/// Key id, grantee and operations of a grant request, validated.
fn grant_parts(
    req: &GrantRequest,
) -> Result<
    (
        crate::model::KeyId,
        crate::identity::Identity,
        crate::model::OperationSet,
    ),
    Status,
> {
    Ok((
        convert::key_id(&req.key_id)?,
        convert::identity("grantee", &req.grantee)?,
        convert::operations(&req.operations)?,
    ))
}

fn key_info(key: &crate::model::KeyMetadata) -> Response<KeyInfo> {
    Response::new(convert::key_info(key))
}

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn create_key(
        &self,
        request: Request<CreateKeyRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.into_inner();
        let key_id = convert::key_id(&req.key_id)?;
        let owner = convert::identity("owner", &req.owner)?;
        let key = self
            .service
            .create_key(&identity, &key_id, &owner, &req.description)
            .await?;
        Ok(key_info(&key))
    }

    async fn rotate_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let key_id = convert::key_id(&request.get_ref().key_id)?;
        Ok(key_info(
            &self.service.rotate_key(&identity, &key_id).await?,
        ))
    }

    async fn get_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let key_id = convert::key_id(&request.get_ref().key_id)?;
        Ok(key_info(&self.service.get_key(&identity, &key_id).await?))
    }

    async fn disable_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let key_id = convert::key_id(&request.get_ref().key_id)?;
        Ok(key_info(
            &self.service.disable_key(&identity, &key_id).await?,
        ))
    }

    async fn enable_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let key_id = convert::key_id(&request.get_ref().key_id)?;
        Ok(key_info(
            &self.service.enable_key(&identity, &key_id).await?,
        ))
    }

    async fn set_min_decryption_version(
        &self,
        request: Request<SetMinDecryptionVersionRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.get_ref();
        let key_id = convert::key_id(&req.key_id)?;
        Ok(key_info(
            &self
                .service
                .set_min_decryption_version(&identity, &key_id, req.version)
                .await?,
        ))
    }

    async fn list_keys(
        &self,
        request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.get_ref();
        let page = self
            .service
            .list_keys(&identity, &req.prefix, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(ListKeysResponse {
            keys: page.keys.iter().map(convert::key_info).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn schedule_key_deletion(
        &self,
        request: Request<ScheduleKeyDeletionRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.get_ref();
        let key_id = convert::key_id(&req.key_id)?;
        Ok(key_info(
            &self
                .service
                .schedule_key_deletion(&identity, &key_id, req.pending_days)
                .await?,
        ))
    }

    async fn cancel_key_deletion(
        &self,
        request: Request<KeyRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let key_id = convert::key_id(&request.get_ref().key_id)?;
        Ok(key_info(
            &self.service.cancel_key_deletion(&identity, &key_id).await?,
        ))
    }

    async fn create_grant(
        &self,
        request: Request<GrantRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let (key_id, grantee, operations) = grant_parts(request.get_ref())?;
        Ok(key_info(
            &self
                .service
                .create_grant(&identity, &key_id, &grantee, operations)
                .await?,
        ))
    }

    async fn revoke_grant(
        &self,
        request: Request<GrantRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let identity = caller_identity(&request)?;
        let (key_id, grantee, operations) = grant_parts(request.get_ref())?;
        Ok(key_info(
            &self
                .service
                .revoke_grant(&identity, &key_id, &grantee, operations)
                .await?,
        ))
    }

    async fn seal(&self, request: Request<SealRequest>) -> Result<Response<SealStatus>, Status> {
        let identity = caller_identity(&request)?;
        self.service.seal(&identity).await?;
        Ok(Response::new(self.seal_status(&identity).await?))
    }

    async fn unseal(
        &self,
        request: Request<UnsealRequest>,
    ) -> Result<Response<SealStatus>, Status> {
        let identity = caller_identity(&request)?;
        self.service.unseal(&identity).await?;
        Ok(Response::new(self.seal_status(&identity).await?))
    }

    async fn get_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<SealStatus>, Status> {
        let identity = caller_identity(&request)?;
        Ok(Response::new(self.seal_status(&identity).await?))
    }
}
