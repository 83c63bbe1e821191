//! The control-plane calls of [`Client`]: keys' lifecycle, grants,
//! sealing, the root and master keys, backup and the audit log (tresor's
//! `Admin` service).

use super::{Client, ClientError, Idempotency, proto};

impl Client {
    /// Creates a key, rotated only on request.
    pub async fn create_key(
        &self,
        key_id: &str,
        owner: &str,
        description: &str,
    ) -> Result<proto::KeyInfo, ClientError> {
        self.create_key_with_rotation(key_id, owner, description, None)
            .await
    }

    /// Creates a key that the server rotates every `rotation_period` (at
    /// least an hour) if given.
    pub async fn create_key_with_rotation(
        &self,
        key_id: &str,
        owner: &str,
        description: &str,
        rotation_period: Option<std::time::Duration>,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::CreateKeyRequest {
            key_id: key_id.to_owned(),
            owner: owner.to_owned(),
            description: description.to_owned(),
            rotation_period_seconds: rotation_period.map_or(0, |p| p.as_secs()),
            ..Default::default()
        };
        self.create_key_with(request).await
    }

    /// Creates a key from a full request: a purpose (MAC, DETERMINISTIC)
    /// or labels besides what [`Client::create_key_with_rotation`] sets.
    pub async fn create_key_with(
        &self,
        request: proto::CreateKeyRequest,
    ) -> Result<proto::KeyInfo, ClientError> {
        // Not idempotent: a second run after a lost answer says the key
        // already exists.
        self.admin_rpc(Idempotency::Unsafe, request, |mut a, r| async move {
            a.create_key(r).await
        })
        .await
    }

    /// Runs a control-plane call that takes only a key id.
    async fn key_call(&self, key_id: &str, call: KeyCall) -> Result<proto::KeyInfo, ClientError> {
        // Rotating twice adds two versions; the others set a state.
        let idempotency = match call {
            KeyCall::Rotate => Idempotency::Unsafe,
            _ => Idempotency::Safe,
        };
        self.admin_rpc(
            idempotency,
            key_request(key_id),
            |mut admin, request| async move {
                match call {
                    KeyCall::Rotate => admin.rotate_key(request).await,
                    KeyCall::Get => admin.get_key(request).await,
                    KeyCall::Disable => admin.disable_key(request).await,
                    KeyCall::Enable => admin.enable_key(request).await,
                    KeyCall::CancelDeletion => admin.cancel_key_deletion(request).await,
                }
            },
        )
        .await
    }

    /// Adds a version and makes it primary.
    pub async fn rotate_key(&self, key_id: &str) -> Result<proto::KeyInfo, ClientError> {
        self.key_call(key_id, KeyCall::Rotate).await
    }

    /// A key's metadata.
    pub async fn get_key(&self, key_id: &str) -> Result<proto::KeyInfo, ClientError> {
        self.key_call(key_id, KeyCall::Get).await
    }

    /// Disables a key.
    pub async fn disable_key(&self, key_id: &str) -> Result<proto::KeyInfo, ClientError> {
        self.key_call(key_id, KeyCall::Disable).await
    }

    /// Enables a key.
    pub async fn enable_key(&self, key_id: &str) -> Result<proto::KeyInfo, ClientError> {
        self.key_call(key_id, KeyCall::Enable).await
    }

    /// Cancels a scheduled deletion (the key comes back disabled).
    pub async fn cancel_key_deletion(&self, key_id: &str) -> Result<proto::KeyInfo, ClientError> {
        self.key_call(key_id, KeyCall::CancelDeletion).await
    }

    /// Sets the minimum decryption version.
    pub async fn set_min_decryption_version(
        &self,
        key_id: &str,
        version: u32,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::SetMinDecryptionVersionRequest {
            key_id: key_id.to_owned(),
            version,
        };
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.set_min_decryption_version(r).await
        })
        .await
    }

    /// Sets how often the server rotates the key by itself (at least an
    /// hour), or with `None` stops automatic rotation.
    pub async fn set_rotation_period(
        &self,
        key_id: &str,
        rotation_period: Option<std::time::Duration>,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::SetRotationPeriodRequest {
            key_id: key_id.to_owned(),
            rotation_period_seconds: rotation_period.map_or(0, |p| p.as_secs()),
        };
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.set_rotation_period(r).await
        })
        .await
    }

    /// Destroys one version below the minimum decryption version: its DEK
    /// is erased and its ciphertexts can never be decrypted again.
    pub async fn destroy_key_version(
        &self,
        key_id: &str,
        version: u32,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::DestroyKeyVersionRequest {
            key_id: key_id.to_owned(),
            version,
        };
        // A second run after a lost answer says "already destroyed".
        self.admin_rpc(Idempotency::Unsafe, request, |mut a, r| async move {
            a.destroy_key_version(r).await
        })
        .await
    }

    /// Schedules deletion after `pending_days` (0: the default of 30).
    pub async fn schedule_key_deletion(
        &self,
        key_id: &str,
        pending_days: u32,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::ScheduleKeyDeletionRequest {
            key_id: key_id.to_owned(),
            pending_days,
        };
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.schedule_key_deletion(r).await
        })
        .await
    }

    /// Makes `new_owner` the key's owner. Admins only, never to
    /// themselves.
    pub async fn transfer_key_ownership(
        &self,
        key_id: &str,
        new_owner: &str,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::TransferKeyOwnershipRequest {
            key_id: key_id.to_owned(),
            new_owner: new_owner.to_owned(),
        };
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.transfer_key_ownership(r).await
        })
        .await
    }

    /// Replaces a key's description. Admins only.
    pub async fn update_key_description(
        &self,
        key_id: &str,
        description: &str,
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = proto::UpdateKeyDescriptionRequest {
            key_id: key_id.to_owned(),
            description: description.to_owned(),
        };
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.update_key_description(r).await
        })
        .await
    }

    /// Replaces a key's labels (empty: removes them all).
    pub async fn set_key_labels<K, V>(
        &self,
        key_id: &str,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Result<proto::KeyInfo, ClientError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let request = proto::SetKeyLabelsRequest {
            key_id: key_id.to_owned(),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.set_key_labels(r).await
        })
        .await
    }

    /// One page of keys.
    pub async fn list_keys_page(
        &self,
        prefix: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<proto::ListKeysResponse, ClientError> {
        let request = proto::ListKeysRequest {
            prefix: prefix.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
            label_selector: Default::default(),
        };
        self.list_keys_request(request).await
    }

    /// One page of keys for a full request (a label selector).
    pub async fn list_keys_request(
        &self,
        request: proto::ListKeysRequest,
    ) -> Result<proto::ListKeysResponse, ClientError> {
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.list_keys(r).await
        })
        .await
    }

    /// Every key with this prefix, following pages.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<proto::KeyInfo>, ClientError> {
        self.list_keys_matching(prefix, std::collections::HashMap::new())
            .await
    }

    /// Every key with this prefix carrying every label of `selector`,
    /// following pages.
    pub async fn list_keys_matching(
        &self,
        prefix: &str,
        selector: std::collections::HashMap<String, String>,
    ) -> Result<Vec<proto::KeyInfo>, ClientError> {
        let mut keys = Vec::new();
        let mut token = String::new();
        loop {
            let request = proto::ListKeysRequest {
                prefix: prefix.to_owned(),
                page_size: 0,
                page_token: token.clone(),
                label_selector: selector.clone(),
            };
            let page = self.list_keys_request(request).await?;
            keys.extend(page.keys);
            if page.next_page_token.is_empty() {
                return Ok(keys);
            }
            token = page.next_page_token;
        }
    }

    /// Grants operations on a key to another identity.
    pub async fn create_grant(
        &self,
        key_id: &str,
        grantee: &str,
        operations: &[proto::Operation],
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = grant_request(key_id, grantee, operations);
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.create_grant(r).await
        })
        .await
    }

    /// Creates a grant from a full request: a grantee pattern
    /// (`spiffe://TRUST-DOMAIN/PATH/*`), `context_equals` or
    /// `context_subset`, `expires_at_unix`.
    pub async fn create_grant_with(
        &self,
        request: proto::GrantRequest,
    ) -> Result<proto::KeyInfo, ClientError> {
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.create_grant(r).await
        })
        .await
    }

    /// Revokes operations (all of them when `operations` is empty).
    pub async fn revoke_grant(
        &self,
        key_id: &str,
        grantee: &str,
        operations: &[proto::Operation],
    ) -> Result<proto::KeyInfo, ClientError> {
        let request = grant_request(key_id, grantee, operations);
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.revoke_grant(r).await
        })
        .await
    }

    /// Re-wraps the root key under another master key (`aws-kms:KEY` or
    /// `file:PATH`, one of the server's `--allowed-master-key` entries;
    /// empty for the current one). `aws_endpoint` must be empty: servers
    /// refuse a request that names a KMS endpoint.
    pub async fn rotate_master_key(
        &self,
        new_master_key: &str,
        aws_endpoint: &str,
    ) -> Result<proto::RotateMasterKeyResponse, ClientError> {
        let request = proto::RotateMasterKeyRequest {
            new_master_key: new_master_key.to_owned(),
            aws_endpoint: aws_endpoint.to_owned(),
        };
        self.admin_rpc(Idempotency::Unsafe, request, |mut a, r| async move {
            a.rotate_master_key(r).await
        })
        .await
    }

    /// Starts a root-key rotation; returns the status with its progress.
    pub async fn rotate_root_key(&self) -> Result<proto::SealStatus, ClientError> {
        self.admin_rpc(
            Idempotency::Unsafe,
            proto::RotateRootKeyRequest {},
            |mut a, r| async move { a.rotate_root_key(r).await },
        )
        .await
    }

    /// A backup of the whole keystore (the chunks concatenated).
    pub async fn create_backup(&self) -> Result<Vec<u8>, ClientError> {
        // Only the call is retried, not a stream broken midway.
        let mut stream = self
            .admin_rpc(
                Idempotency::Safe,
                proto::CreateBackupRequest {},
                |mut a, r| async move { a.create_backup(r).await },
            )
            .await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(|s| self.fail(s))? {
            bytes.extend_from_slice(&chunk.data);
        }
        Ok(bytes)
    }

    /// Has the server check its own audit log (admin).
    pub async fn verify_audit_log(&self) -> Result<proto::AuditLogReport, ClientError> {
        self.admin_rpc(
            Idempotency::Safe,
            proto::VerifyAuditLogRequest {},
            |mut a, r| async move { a.verify_audit_log(r).await },
        )
        .await
    }

    /// Seals the server.
    pub async fn seal(&self) -> Result<proto::SealStatus, ClientError> {
        self.admin_rpc(
            Idempotency::Safe,
            proto::SealRequest {},
            |mut a, r| async move { a.seal(r).await },
        )
        .await
    }

    /// Approves unsealing the server: unseals it unless the server needs
    /// more approvals (`unseal_approvals` < `unseal_quorum` in the status)
    /// or an unseal token ([`Client::unseal_with_token`]).
    pub async fn unseal(&self) -> Result<proto::SealStatus, ClientError> {
        self.unseal_with_token(None).await
    }

    /// [`Client::unseal`] with the out-of-band unseal token, for a server
    /// started with `--unseal-token-file`.
    pub async fn unseal_with_token(
        &self,
        token: Option<&str>,
    ) -> Result<proto::SealStatus, ClientError> {
        let request = proto::UnsealRequest {
            unseal_token: token.unwrap_or_default().to_owned(),
        };
        // Retrying resends the same approval, which never counts twice.
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.unseal(r).await
        })
        .await
    }

    /// Seal state, key count and server version.
    pub async fn status(&self) -> Result<proto::SealStatus, ClientError> {
        self.admin_rpc(
            Idempotency::Safe,
            proto::StatusRequest {},
            |mut a, r| async move { a.get_status(r).await },
        )
        .await
    }
}

fn key_request(key_id: &str) -> proto::KeyRequest {
    proto::KeyRequest {
        key_id: key_id.to_owned(),
    }
}

#[derive(Debug, Clone, Copy)]
enum KeyCall {
    Rotate,
    Get,
    Disable,
    Enable,
    CancelDeletion,
}

fn grant_request(
    key_id: &str,
    grantee: &str,
    operations: &[proto::Operation],
) -> proto::GrantRequest {
    proto::GrantRequest {
        key_id: key_id.to_owned(),
        grantee: grantee.to_owned(),
        operations: operations.iter().map(|op| (*op).into()).collect(),
        ..Default::default()
    }
}

impl Client {
    /// Creates `alias` (`alias/...`) pointing at `key_id`. Admins only.
    pub async fn create_alias(
        &self,
        alias: &str,
        key_id: &str,
    ) -> Result<proto::AliasInfo, ClientError> {
        let request = alias_request(alias, key_id);
        // Not idempotent: a second run after a lost answer says it exists.
        self.admin_rpc(Idempotency::Unsafe, request, |mut a, r| async move {
            a.create_alias(r).await
        })
        .await
    }

    /// Points `alias` at `key_id` (of the same purpose as its current
    /// key). Admins only.
    pub async fn update_alias(
        &self,
        alias: &str,
        key_id: &str,
    ) -> Result<proto::AliasInfo, ClientError> {
        let request = alias_request(alias, key_id);
        self.admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
            a.update_alias(r).await
        })
        .await
    }

    /// Deletes `alias`; its key is untouched. Admins only.
    pub async fn delete_alias(&self, alias: &str) -> Result<(), ClientError> {
        let request = proto::DeleteAliasRequest {
            alias: alias.to_owned(),
        };
        // A second run after a lost answer says NOT_FOUND: not retried.
        self.admin_rpc(Idempotency::Unsafe, request, |mut a, r| async move {
            a.delete_alias(r).await
        })
        .await
        .map(drop)
    }

    /// Every alias starting with `prefix` the caller may see, following
    /// pages.
    pub async fn list_aliases(&self, prefix: &str) -> Result<Vec<proto::AliasInfo>, ClientError> {
        let mut aliases = Vec::new();
        let mut token = String::new();
        loop {
            let request = proto::ListAliasesRequest {
                prefix: prefix.to_owned(),
                page_size: 0,
                page_token: token.clone(),
            };
            let page = self
                .admin_rpc(Idempotency::Safe, request, |mut a, r| async move {
                    a.list_aliases(r).await
                })
                .await?;
            aliases.extend(page.aliases);
            if page.next_page_token.is_empty() {
                return Ok(aliases);
            }
            token = page.next_page_token;
        }
    }
}

fn alias_request(alias: &str, key_id: &str) -> proto::AliasRequest {
    proto::AliasRequest {
        alias: alias.to_owned(),
        key_id: key_id.to_owned(),
    }
}
