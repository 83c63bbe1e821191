"""The control-plane calls of `tresor.aio.Client`, as coroutines: keys'
lifecycle, labels, grants, aliases, role bindings, sealing, the root and master
keys, backup and the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, TypeVar

from .. import _calls as calls
from .. import _methods as m
from .._context import Context
from ..types import (
    AliasInfo,
    AuditLogReport,
    KeyInfo,
    KeyPurpose,
    ListKeysPage,
    Operation,
    RoleBinding,
    SealStatus,
)
from ._transport import AioTransport

T = TypeVar("T")


class AioAdminCalls:
    """Mixed into `tresor.aio.Client`."""

    _transport: AioTransport

    async def _run(self, call: calls.Call[Any, T]) -> T:
        raise NotImplementedError

    async def create_key(
        self,
        key_id: str,
        owner: str,
        description: str = "",
        *,
        rotation_period_seconds: Optional[int] = None,
        purpose: KeyPurpose = KeyPurpose.UNSPECIFIED,
        labels: Optional[Context] = None,
    ) -> KeyInfo:
        """Creates a key owned by `owner` (rotated every `rotation_period_seconds`,
        at least 3600, when given). Not retried unless nothing was done: a second
        run after a lost answer says AlreadyExists.
        """
        return await self._run(
            calls.create_key(key_id, owner, description, rotation_period_seconds, purpose, labels)
        )

    async def rotate_key(self, key_id: str) -> KeyInfo:
        """Adds a version and makes it primary (not retried unless nothing was done)."""
        return await self._run(calls.key_call(m.ROTATE_KEY, key_id))

    async def get_key(self, key_id: str) -> KeyInfo:
        """A key's metadata."""
        return await self._run(calls.key_call(m.GET_KEY, key_id))

    async def disable_key(self, key_id: str) -> KeyInfo:
        """Disables a key: the data plane refuses it (KeyDisabled)."""
        return await self._run(calls.key_call(m.DISABLE_KEY, key_id))

    async def enable_key(self, key_id: str) -> KeyInfo:
        """Enables a key."""
        return await self._run(calls.key_call(m.ENABLE_KEY, key_id))

    async def cancel_key_deletion(self, key_id: str) -> KeyInfo:
        """Cancels a scheduled deletion (the key comes back disabled)."""
        return await self._run(calls.key_call(m.CANCEL_KEY_DELETION, key_id))

    async def set_min_decryption_version(self, key_id: str, version: int) -> KeyInfo:
        """Refuses ciphertexts of versions below `version` (KeyVersionBelowMinimum)."""
        return await self._run(calls.set_min_decryption_version(key_id, version))

    async def set_rotation_period(self, key_id: str, seconds: Optional[int]) -> KeyInfo:
        """Rotates the key every `seconds` (at least 3600), or with None only on request."""
        return await self._run(calls.set_rotation_period(key_id, seconds))

    async def destroy_key_version(self, key_id: str, version: int) -> KeyInfo:
        """Erases one version below the minimum decryption version: its ciphertexts
        can never be decrypted again (KeyVersionDestroyed).
        """
        return await self._run(calls.destroy_key_version(key_id, version))

    async def schedule_key_deletion(self, key_id: str, pending_days: int = 0) -> KeyInfo:
        """Schedules deletion after `pending_days` (7 to 30; 0: 30)."""
        return await self._run(calls.schedule_key_deletion(key_id, pending_days))

    async def transfer_key_ownership(self, key_id: str, new_owner: str) -> KeyInfo:
        """Makes `new_owner` the key's owner (admins only)."""
        return await self._run(calls.transfer_key_ownership(key_id, new_owner))

    async def update_key_description(self, key_id: str, description: str) -> KeyInfo:
        """Replaces a key's description (admins only)."""
        return await self._run(calls.update_key_description(key_id, description))

    async def set_key_labels(self, key_id: str, labels: Optional[Context]) -> KeyInfo:
        """Replaces a key's labels (empty or None: removes them all)."""
        return await self._run(calls.set_key_labels(key_id, labels))

    async def list_keys_page(
        self,
        prefix: str = "",
        page_size: int = 0,
        page_token: str = "",
        label_selector: Optional[Context] = None,
    ) -> ListKeysPage:
        """One page of keys (page_size 0: the server's default of 100)."""
        return await self._run(calls.list_keys_page(prefix, page_size, page_token, label_selector))

    async def list_keys(
        self, prefix: str = "", label_selector: Optional[Context] = None
    ) -> list[KeyInfo]:
        """Every key with this prefix carrying every label of `label_selector`."""
        keys: list[KeyInfo] = []
        token = ""
        while True:
            page = await self.list_keys_page(prefix, 0, token, label_selector)
            keys.extend(page.keys)
            if not page.next_page_token:
                return keys
            token = page.next_page_token

    async def create_grant(
        self,
        key_id: str,
        grantee: str,
        operations: Iterable[Operation],
        *,
        context_equals: Optional[Context] = None,
        context_subset: Optional[Context] = None,
        expires_at_unix: int = 0,
    ) -> KeyInfo:
        """Grants `operations` on a key to `grantee` (an identity or a pattern
        spiffe://TRUST-DOMAIN/PATH/*), optionally only for requests whose context
        equals `context_equals` or contains `context_subset`, until
        `expires_at_unix` (0: never).
        """
        return await self._run(
            calls.create_grant(
                key_id, grantee, operations, context_equals, context_subset, expires_at_unix
            )
        )

    async def revoke_grant(
        self, key_id: str, grantee: str, operations: Iterable[Operation] = ()
    ) -> KeyInfo:
        """Revokes operations (all of them when none are given)."""
        return await self._run(calls.revoke_grant(key_id, grantee, operations))

    async def create_alias(self, alias: str, key_id: str) -> AliasInfo:
        """Creates `alias` (alias/...) pointing at `key_id` (admins only)."""
        return await self._run(calls.alias_call(m.CREATE_ALIAS, alias, key_id))

    async def update_alias(self, alias: str, key_id: str) -> AliasInfo:
        """Points `alias` at `key_id` (admins only)."""
        return await self._run(calls.alias_call(m.UPDATE_ALIAS, alias, key_id))

    async def delete_alias(self, alias: str) -> None:
        """Deletes `alias`; its key is untouched (admins only)."""
        await self._run(calls.delete_alias(alias))

    async def list_aliases(self, prefix: str = "") -> list[AliasInfo]:
        """Every alias starting with `prefix` the caller may see."""
        aliases: list[AliasInfo] = []
        token = ""
        while True:
            page, token = await self._run(calls.list_aliases_page(prefix, token))
            aliases.extend(page)
            if not token:
                return aliases

    async def add_role_binding(self, role: str, identity: str) -> RoleBinding:
        """Gives `role` (admin, security-officer, auditor) to `identity` (admins only)."""
        return await self._run(calls.add_role_binding(role, identity))

    async def remove_role_binding(self, role: str, identity: str) -> None:
        """Takes `role` back from `identity` (admins only)."""
        await self._run(calls.remove_role_binding(role, identity))

    async def list_role_bindings(self) -> list[RoleBinding]:
        """Every role binding (any role holder)."""
        return await self._run(calls.list_role_bindings())

    async def seal(self) -> SealStatus:
        """Seals the server: key material leaves its memory, the data plane refuses."""
        return await self._run(calls.seal())

    async def unseal(self, token: Optional[str] = None) -> SealStatus:
        """Approves unsealing (with the out-of-band token for a server started with
        --unseal-token-file); unseals unless more approvals are needed.
        """
        return await self._run(calls.unseal(token))

    async def status(self) -> SealStatus:
        """Seal state, key count and server version."""
        return await self._run(calls.status())

    async def rotate_master_key(self, new_master_key: str = "", aws_endpoint: str = "") -> str:
        """Re-wraps the root key under another master key (one of the server's
        --allowed-master-key; empty: the current one). Returns the master key now
        wrapping the root key.
        """
        return await self._run(calls.rotate_master_key(new_master_key, aws_endpoint))

    async def rotate_root_key(self) -> SealStatus:
        """Starts a root-key rotation; the status shows its progress."""
        return await self._run(calls.rotate_root_key())

    async def create_backup(self) -> bytes:
        """A backup of the whole keystore (the chunks concatenated)."""

        async def download() -> bytes:
            request = calls.create_backup_request()
            return b"".join(
                [c.data async for c in self._transport.stream(m.CREATE_BACKUP, request)]
            )

        retry = getattr(self, "_retry", None)
        if retry is None:
            return await download()
        backup: bytes = await retry.run_async(m.CREATE_BACKUP.idempotency, download)
        return backup

    async def verify_audit_log(self) -> AuditLogReport:
        """Has the server check its own audit log (admin)."""
        return await self._run(calls.verify_audit_log())
