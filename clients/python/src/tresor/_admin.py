"""The control-plane calls of `tresor.Client` (tresor's Admin service): keys'
lifecycle, labels, grants, aliases, role bindings, sealing, the root and master
keys, backup and the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, TypeVar

from . import _calls as calls
from . import _methods as m
from ._context import Context
from ._transport import Transport
from .types import (
    AliasInfo,
    AuditLogReport,
    KeyInfo,
    KeyPurpose,
    ListKeysPage,
    Operation,
    RoleBinding,
    SealStatus,
)

T = TypeVar("T")


class AdminCalls:
    """Mixed into `tresor.Client`."""

    _transport: Transport

    def _run(self, call: calls.Call[Any, T]) -> T:
        raise NotImplementedError

    def create_key(
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
        return self._run(
            calls.create_key(key_id, owner, description, rotation_period_seconds, purpose, labels)
        )

    def rotate_key(self, key_id: str) -> KeyInfo:
        """Adds a version and makes it primary (not retried unless nothing was done)."""
        return self._run(calls.key_call(m.ROTATE_KEY, key_id))

    def get_key(self, key_id: str) -> KeyInfo:
        """A key's metadata."""
        return self._run(calls.key_call(m.GET_KEY, key_id))

    def disable_key(self, key_id: str) -> KeyInfo:
        """Disables a key: the data plane refuses it (KeyDisabled)."""
        return self._run(calls.key_call(m.DISABLE_KEY, key_id))

    def enable_key(self, key_id: str) -> KeyInfo:
        """Enables a key."""
        return self._run(calls.key_call(m.ENABLE_KEY, key_id))

    def cancel_key_deletion(self, key_id: str) -> KeyInfo:
        """Cancels a scheduled deletion (the key comes back disabled)."""
        return self._run(calls.key_call(m.CANCEL_KEY_DELETION, key_id))

    def set_min_decryption_version(self, key_id: str, version: int) -> KeyInfo:
        """Refuses ciphertexts of versions below `version` (KeyVersionBelowMinimum)."""
        return self._run(calls.set_min_decryption_version(key_id, version))

    def set_rotation_period(self, key_id: str, seconds: Optional[int]) -> KeyInfo:
        """Rotates the key every `seconds` (at least 3600), or with None only on request."""
        return self._run(calls.set_rotation_period(key_id, seconds))

    def destroy_key_version(self, key_id: str, version: int) -> KeyInfo:
        """Erases one version below the minimum decryption version: its ciphertexts
        can never be decrypted again (KeyVersionDestroyed).
        """
        return self._run(calls.destroy_key_version(key_id, version))

    def schedule_key_deletion(self, key_id: str, pending_days: int = 0) -> KeyInfo:
        """Schedules deletion after `pending_days` (7 to 30; 0: 30)."""
        return self._run(calls.schedule_key_deletion(key_id, pending_days))

    def transfer_key_ownership(self, key_id: str, new_owner: str) -> KeyInfo:
        """Makes `new_owner` the key's owner (admins only)."""
        return self._run(calls.transfer_key_ownership(key_id, new_owner))

    def update_key_description(self, key_id: str, description: str) -> KeyInfo:
        """Replaces a key's description (admins only)."""
        return self._run(calls.update_key_description(key_id, description))

    def set_key_labels(self, key_id: str, labels: Optional[Context]) -> KeyInfo:
        """Replaces a key's labels (empty or None: removes them all)."""
        return self._run(calls.set_key_labels(key_id, labels))

    def list_keys_page(
        self,
        prefix: str = "",
        page_size: int = 0,
        page_token: str = "",
        label_selector: Optional[Context] = None,
    ) -> ListKeysPage:
        """One page of keys (page_size 0: the server's default of 100)."""
        return self._run(calls.list_keys_page(prefix, page_size, page_token, label_selector))

    def list_keys(
        self, prefix: str = "", label_selector: Optional[Context] = None
    ) -> list[KeyInfo]:
        """Every key with this prefix carrying every label of `label_selector`."""
        keys: list[KeyInfo] = []
        token = ""
        while True:
            page = self.list_keys_page(prefix, 0, token, label_selector)
            keys.extend(page.keys)
            if not page.next_page_token:
                return keys
            token = page.next_page_token

    def create_grant(
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
        return self._run(
            calls.create_grant(
                key_id, grantee, operations, context_equals, context_subset, expires_at_unix
            )
        )

    def revoke_grant(
        self, key_id: str, grantee: str, operations: Iterable[Operation] = ()
    ) -> KeyInfo:
        """Revokes operations (all of them when none are given)."""
        return self._run(calls.revoke_grant(key_id, grantee, operations))

    def create_alias(self, alias: str, key_id: str) -> AliasInfo:
        """Creates `alias` (alias/...) pointing at `key_id` (admins only)."""
        return self._run(calls.alias_call(m.CREATE_ALIAS, alias, key_id))

    def update_alias(self, alias: str, key_id: str) -> AliasInfo:
        """Points `alias` at `key_id` (admins only)."""
        return self._run(calls.alias_call(m.UPDATE_ALIAS, alias, key_id))

    def delete_alias(self, alias: str) -> None:
        """Deletes `alias`; its key is untouched (admins only)."""
        self._run(calls.delete_alias(alias))

    def list_aliases(self, prefix: str = "") -> list[AliasInfo]:
        """Every alias starting with `prefix` the caller may see."""
        aliases: list[AliasInfo] = []
        token = ""
        while True:
            page, token = self._run(calls.list_aliases_page(prefix, token))
            aliases.extend(page)
            if not token:
                return aliases

    def add_role_binding(self, role: str, identity: str) -> RoleBinding:
        """Gives `role` (admin, security-officer, auditor) to `identity` (admins only)."""
        return self._run(calls.add_role_binding(role, identity))

    def remove_role_binding(self, role: str, identity: str) -> None:
        """Takes `role` back from `identity` (admins only)."""
        self._run(calls.remove_role_binding(role, identity))

    def list_role_bindings(self) -> list[RoleBinding]:
        """Every role binding (any role holder)."""
        return self._run(calls.list_role_bindings())

    def seal(self) -> SealStatus:
        """Seals the server: key material leaves its memory, the data plane refuses."""
        return self._run(calls.seal())

    def unseal(self, token: Optional[str] = None) -> SealStatus:
        """Approves unsealing (with the out-of-band token for a server started with
        --unseal-token-file); unseals unless more approvals are needed.
        """
        return self._run(calls.unseal(token))

    def status(self) -> SealStatus:
        """Seal state, key count and server version."""
        return self._run(calls.status())

    def rotate_master_key(self, new_master_key: str = "", aws_endpoint: str = "") -> str:
        """Re-wraps the root key under another master key (one of the server's
        --allowed-master-key; empty: the current one). Returns the master key now
        wrapping the root key.
        """
        return self._run(calls.rotate_master_key(new_master_key, aws_endpoint))

    def rotate_root_key(self) -> SealStatus:
        """Starts a root-key rotation; the status shows its progress."""
        return self._run(calls.rotate_root_key())

    def create_backup(self) -> bytes:
        """A backup of the whole keystore (the chunks concatenated)."""

        def download() -> bytes:
            return b"".join(
                chunk.data
                for chunk in self._transport.stream(m.CREATE_BACKUP, calls.create_backup_request())
            )

        retry = getattr(self, "_retry", None)
        return retry.run(m.CREATE_BACKUP.idempotency, download) if retry else download()

    def verify_audit_log(self) -> AuditLogReport:
        """Has the server check its own audit log (admin)."""
        return self._run(calls.verify_audit_log())
