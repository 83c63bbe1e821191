//! The `tresor.v1.Admin` service: control-plane handlers.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::audited::{Answer, Handled, Subject, audited, audited_with_detail};
use super::convert;
use crate::model::{KeyVersion, Labels, RotationPeriod, Rpc};
use crate::service::{NewKey, Service};
use tresor_proto::v1::admin_server::Admin;
use tresor_proto::v1::{
    AliasInfo, AliasRequest, AuditLogReport, BackupChunk, CreateBackupRequest, CreateKeyRequest,
    DeleteAliasRequest, DeleteAliasResponse, DestroyKeyVersionRequest, GrantRequest, KeyInfo,
    KeyRequest, ListAliasesRequest, ListAliasesResponse, ListKeysRequest, ListKeysResponse,
    ListRoleBindingsRequest, ListRoleBindingsResponse, RemoveRoleBindingResponse, RoleBinding,
    RoleBindingRequest, RotateMasterKeyRequest, RotateMasterKeyResponse, RotateRootKeyRequest,
    ScheduleKeyDeletionRequest, SealRequest, SealStatus, SetKeyLabelsRequest,
    SetMinDecryptionVersionRequest, SetRotationPeriodRequest, StatusRequest,
    TransferKeyOwnershipRequest, UnsealRequest, UpdateKeyDescriptionRequest, VerifyAuditLogRequest,
};

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

    /// The service the handlers call.
    pub(super) fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// A call on one key that returns the key's info: validated, run and
    /// recorded. `act` gets the validated key id and the rest of the request.
    async fn on_key<Req, Act, Fut>(
        &self,
        rpc: Rpc,
        request: Request<Req>,
        act: Act,
    ) -> Result<Response<KeyInfo>, Status>
    where
        Req: NamesKey,
        Act: FnOnce(Arc<Service>, crate::identity::Identity, crate::model::KeyId, Req) -> Fut,
        Fut: std::future::Future<Output = Result<crate::model::KeyMetadata, crate::error::Error>>,
    {
        let service = &self.service;
        audited(
            service,
            rpc,
            request,
            |req| Subject::key(req.key_id()),
            |identity, req| async move {
                let key_id = convert::key_id(req.key_id())?;
                Ok(key_info(
                    service,
                    &act(service.clone(), identity, key_id, req).await?,
                ))
            },
        )
        .await
    }

    /// A call that acts on the whole service, then answers with its status:
    /// validated, run and recorded.
    async fn then_status<Req, Act, Fut>(
        &self,
        rpc: Rpc,
        request: Request<Req>,
        act: Act,
    ) -> Result<Response<SealStatus>, Status>
    where
        Act: FnOnce(Arc<Service>, crate::identity::Identity) -> Fut,
        Fut: std::future::Future<Output = Result<(), Status>>,
    {
        audited(
            &self.service,
            rpc,
            request,
            |_| Subject::default(),
            |identity, _| async move {
                act(self.service.clone(), identity.clone()).await?;
                self.seal_status().await.map(Answer::new)
            },
        )
        .await
    }

    /// The status after a call its handler authorized.
    async fn seal_status(&self) -> Result<SealStatus, Status> {
        let status = self.service.current_status().await?;
        Ok(SealStatus {
            sealed: status.sealed,
            key_count: status.key_count,
            server_version: status.server_version.to_owned(),
            master_key: status.master_key,
            root_key_generation: status.root_generation,
            root_rotation_in_progress: status.root_rotation.is_some(),
            root_rotation_rewrapped: status.root_rotation.map_or(0, |r| r.rewrapped),
            root_rotation_total: status.root_rotation.map_or(0, |r| r.total),
            unseal_quorum: status.unseal.quorum,
            unseal_approvals: u32::try_from(status.unseal.approved_by.len()).unwrap_or(u32::MAX),
            unseal_approved_by: status
                .unseal
                .approved_by
                .into_iter()
                .map(crate::identity::Identity::into_string)
                .collect(),
            unseal_window_remaining_seconds: status.unseal.window_remaining.as_secs(),
            unseal_token_required: status.unseal.token_required,
            server_certificate: status.server_certificate.map(|served| {
                tresor_proto::v1::ServerCertificate {
                    subject: served.subject,
                    serial: served.serial,
                    not_before_unix: served.not_before_unix,
                    not_after_unix: served.not_after_unix,
                }
            }),
        })
    }

    /// One Unseal approval: the token taken out of the request (and wiped
    /// after use), the service's verdict, and the record's detail with the
    /// approval progress.
    async fn approve_unseal(
        &self,
        identity: crate::identity::Identity,
        req: UnsealRequest,
    ) -> (Handled<SealStatus>, Option<String>) {
        let token = zeroize::Zeroizing::new(req.unseal_token);
        let given = (!token.is_empty()).then_some(token.as_str());
        match self.service.approve_unseal(&identity, given).await {
            Ok(outcome) => (
                self.seal_status().await.map(Answer::new),
                Some(outcome.to_string()),
            ),
            Err(refused) => (Err(refused.error.into()), Some(refused.why.to_owned())),
        }
    }
}

/// A key's info as a response, with its primary version for the record.
fn key_info(service: &Service, key: &crate::model::KeyMetadata) -> Answer<KeyInfo> {
    Answer::new(convert::key_info(key, service.now())).with_key_version(key.primary_version.get())
}

fn grant_subject(req: &GrantRequest) -> Subject {
    Subject::key(&req.key_id)
}

/// Chunk size of a streamed backup.
const BACKUP_CHUNK_BYTES: usize = 1024 * 1024;

/// A request that names one key.
trait NamesKey: Send + 'static {
    /// The key id as sent.
    fn key_id(&self) -> &str;
}

macro_rules! names_key {
    ($($request:ty),+) => {$(
        impl NamesKey for $request {
            fn key_id(&self) -> &str {
                &self.key_id
            }
        }
    )+};
}

names_key!(
    KeyRequest,
    SetMinDecryptionVersionRequest,
    SetRotationPeriodRequest,
    DestroyKeyVersionRequest,
    SetKeyLabelsRequest,
    TransferKeyOwnershipRequest,
    UpdateKeyDescriptionRequest
);

#[tonic::async_trait]
impl Admin for AdminApi {
    type CreateBackupStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<BackupChunk, Status>> + Send + 'static>,
    >;

    async fn create_backup(
        &self,
        request: Request<CreateBackupRequest>,
    ) -> Result<Response<Self::CreateBackupStream>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::CreateBackup,
            request,
            |_| Subject::default(),
            |identity, _| async move {
                let bytes = service.create_backup(&identity).await?;
                let chunks: Vec<Result<BackupChunk, Status>> = bytes
                    .chunks(BACKUP_CHUNK_BYTES)
                    .map(|chunk| {
                        Ok(BackupChunk {
                            data: chunk.to_vec(),
                        })
                    })
                    .collect();
                let stream: Self::CreateBackupStream = Box::pin(tokio_stream::iter(chunks));
                Ok(Answer::new(stream))
            },
        )
        .await
    }

    async fn create_key(
        &self,
        request: Request<CreateKeyRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::CreateKey,
            request,
            |req| Subject::key(&req.key_id),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let spec = NewKey {
                    owner: convert::identity("owner", &req.owner)?,
                    description: req.description,
                    rotation_period: RotationPeriod::optional(req.rotation_period_seconds)?,
                    purpose: convert::key_purpose(req.purpose)?,
                    labels: convert::labels("labels", req.labels)?,
                };
                let key = service.create_key_as(&identity, &key_id, spec).await?;
                Ok(key_info(service, &key))
            },
        )
        .await
    }

    async fn rotate_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::RotateKey,
            request,
            |service, identity, key_id, _| async move { service.rotate_key(&identity, &key_id).await },
        )
        .await
    }

    async fn get_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::GetKey,
            request,
            |service, identity, key_id, _| async move { service.get_key(&identity, &key_id).await },
        )
        .await
    }

    async fn disable_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        self.on_key(Rpc::DisableKey, request, |service, identity, key_id, _| async move {
            service.disable_key(&identity, &key_id).await
        })
        .await
    }

    async fn enable_key(&self, request: Request<KeyRequest>) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::EnableKey,
            request,
            |service, identity, key_id, _| async move { service.enable_key(&identity, &key_id).await },
        )
        .await
    }

    async fn set_min_decryption_version(
        &self,
        request: Request<SetMinDecryptionVersionRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::SetMinDecryptionVersion,
            request,
            |service, identity, key_id, req| async move {
                service
                    .set_min_decryption_version(&identity, &key_id, KeyVersion::new(req.version)?)
                    .await
            },
        )
        .await
    }

    async fn set_rotation_period(
        &self,
        request: Request<SetRotationPeriodRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::SetRotationPeriod,
            request,
            |service, identity, key_id, req| async move {
                let period = RotationPeriod::optional(req.rotation_period_seconds)?;
                service
                    .set_rotation_period(&identity, &key_id, period)
                    .await
            },
        )
        .await
    }

    async fn set_key_labels(
        &self,
        request: Request<SetKeyLabelsRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::SetKeyLabels,
            request,
            |service, identity, key_id, req| async move {
                let labels = Labels::parse(req.labels)?;
                service.set_key_labels(&identity, &key_id, labels).await
            },
        )
        .await
    }

    async fn transfer_key_ownership(
        &self,
        request: Request<TransferKeyOwnershipRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::TransferKeyOwnership,
            request,
            |service, identity, key_id, req| async move {
                let new_owner = crate::identity::Identity::parse(&req.new_owner)
                    .map_err(|e| crate::error::Error::InvalidArgument(format!("new_owner: {e}")))?;
                service
                    .transfer_key_ownership(&identity, &key_id, &new_owner)
                    .await
            },
        )
        .await
    }

    async fn update_key_description(
        &self,
        request: Request<UpdateKeyDescriptionRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::UpdateKeyDescription,
            request,
            |service, identity, key_id, req| async move {
                service
                    .update_key_description(&identity, &key_id, &req.description)
                    .await
            },
        )
        .await
    }

    async fn destroy_key_version(
        &self,
        request: Request<DestroyKeyVersionRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::DestroyKeyVersion,
            request,
            |service, identity, key_id, req| async move {
                service
                    .destroy_key_version(&identity, &key_id, KeyVersion::new(req.version)?)
                    .await
            },
        )
        .await
    }

    async fn list_keys(
        &self,
        request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::ListKeys,
            request,
            |_| Subject::default(),
            |identity, req| async move {
                let page = service
                    .list_keys_matching(
                        &identity,
                        &req.prefix,
                        &convert::labels("label_selector", req.label_selector)?,
                        req.page_size,
                        convert::page_start(&req.page_token)?,
                    )
                    .await?;
                Ok(Answer::new(ListKeysResponse {
                    keys: page
                        .keys
                        .iter()
                        .map(|key| convert::key_info(key, service.now()))
                        .collect(),
                    next_page_token: page
                        .next_after
                        .as_ref()
                        .map(|last| convert::page_token(last.as_str()))
                        .unwrap_or_default(),
                }))
            },
        )
        .await
    }

    async fn schedule_key_deletion(
        &self,
        request: Request<ScheduleKeyDeletionRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::ScheduleKeyDeletion,
            request,
            |req| Subject::key(&req.key_id),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                Ok(key_info(
                    service,
                    &service
                        .schedule_key_deletion(&identity, &key_id, req.pending_days)
                        .await?,
                ))
            },
        )
        .await
    }

    async fn cancel_key_deletion(
        &self,
        request: Request<KeyRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        self.on_key(
            Rpc::CancelKeyDeletion,
            request,
            |service, identity, key_id, _| async move {
                service.cancel_key_deletion(&identity, &key_id).await
            },
        )
        .await
    }

    async fn create_grant(
        &self,
        request: Request<GrantRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::CreateGrant,
            request,
            grant_subject,
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let grant = convert::grant(&req)?;
                Ok(key_info(
                    service,
                    &service
                        .create_conditional_grant(&identity, &key_id, grant)
                        .await?,
                ))
            },
        )
        .await
    }

    async fn create_alias(
        &self,
        request: Request<AliasRequest>,
    ) -> Result<Response<AliasInfo>, Status> {
        self.handle_point_alias(Rpc::CreateAlias, request).await
    }

    async fn update_alias(
        &self,
        request: Request<AliasRequest>,
    ) -> Result<Response<AliasInfo>, Status> {
        self.handle_point_alias(Rpc::UpdateAlias, request).await
    }

    async fn delete_alias(
        &self,
        request: Request<DeleteAliasRequest>,
    ) -> Result<Response<DeleteAliasResponse>, Status> {
        self.handle_delete_alias(request).await
    }

    async fn list_aliases(
        &self,
        request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        self.handle_list_aliases(request).await
    }

    async fn revoke_grant(
        &self,
        request: Request<GrantRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::RevokeGrant,
            request,
            grant_subject,
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let grantee = convert::revoked_grantee(&req)?;
                let operations = convert::operations(&req.operations)?;
                Ok(key_info(
                    service,
                    &service
                        .revoke_grantee(&identity, &key_id, &grantee, operations)
                        .await?,
                ))
            },
        )
        .await
    }

    async fn seal(&self, request: Request<SealRequest>) -> Result<Response<SealStatus>, Status> {
        self.then_status(Rpc::Seal, request, |service, identity| async move {
            Ok(service.seal(&identity).await?)
        })
        .await
    }

    async fn unseal(
        &self,
        request: Request<UnsealRequest>,
    ) -> Result<Response<SealStatus>, Status> {
        audited_with_detail(
            &self.service,
            Rpc::Unseal,
            request,
            |_| Subject::default(),
            |mut req| zeroize::Zeroize::zeroize(&mut req.unseal_token),
            |identity, req| self.approve_unseal(identity, req),
        )
        .await
    }

    async fn rotate_master_key(
        &self,
        request: Request<RotateMasterKeyRequest>,
    ) -> Result<Response<RotateMasterKeyResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::RotateMasterKey,
            request,
            |req| {
                Subject::detail(
                    service.describe_master_key_request(&req.new_master_key, &req.aws_endpoint),
                )
            },
            |identity, req| async move {
                let master_key = service
                    .rotate_master_key(&identity, &req.new_master_key, &req.aws_endpoint)
                    .await?;
                Ok(Answer::new(RotateMasterKeyResponse { master_key }))
            },
        )
        .await
    }

    async fn rotate_root_key(
        &self,
        request: Request<RotateRootKeyRequest>,
    ) -> Result<Response<SealStatus>, Status> {
        self.then_status(
            Rpc::RotateRootKey,
            request,
            |service, identity| async move {
                service
                    .rotate_root_key(&identity)
                    .await
                    .map_err(Status::from)
            },
        )
        .await
    }

    async fn verify_audit_log(
        &self,
        request: Request<VerifyAuditLogRequest>,
    ) -> Result<Response<AuditLogReport>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::VerifyAuditLog,
            request,
            |_| Subject::default(),
            |identity, _| async move {
                let report = service.verify_audit_log(&identity).await?;
                Ok(Answer::new(AuditLogReport {
                    intact: report.problem.is_none(),
                    files: u32::try_from(report.files).unwrap_or(u32::MAX),
                    records: report.records,
                    first_record: report.first_record,
                    last_record: report.last_record,
                    problem: report.problem.unwrap_or_default(),
                }))
            },
        )
        .await
    }

    async fn get_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<SealStatus>, Status> {
        self.then_status(Rpc::GetStatus, request, |service, identity| async move {
            Ok(service.authorize_status(&identity).await?)
        })
        .await
    }

    async fn add_role_binding(
        &self,
        request: Request<RoleBindingRequest>,
    ) -> Result<Response<RoleBinding>, Status> {
        self.handle_add_role_binding(request).await
    }

    async fn remove_role_binding(
        &self,
        request: Request<RoleBindingRequest>,
    ) -> Result<Response<RemoveRoleBindingResponse>, Status> {
        self.handle_remove_role_binding(request).await
    }

    async fn list_role_bindings(
        &self,
        request: Request<ListRoleBindingsRequest>,
    ) -> Result<Response<ListRoleBindingsResponse>, Status> {
        self.handle_list_role_bindings(request).await
    }
}
