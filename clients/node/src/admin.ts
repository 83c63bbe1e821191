/**
 * The control plane (service tresor.v1.Admin): keys, grants, aliases, role
 * bindings, seal state, backups and the audit log. Each method is one RPC;
 * unsafe ones (CreateKey, RotateKey...) are retried only when the server
 * certainly did nothing (see retry.ts).
 */

import { BaseClient } from "./base.js";
import { type Context, contextObject } from "./context.js";
import type { CallOptions } from "./transport.js";
import type {
  AliasInfo,
  AuditLogReport,
  KeyInfo,
  KeyPurpose,
  ListKeysPage,
  Operation,
  RoleBinding,
  SealStatus,
} from "./types.js";

/** Options of createKey. */
export interface CreateKeyOptions extends CallOptions {
  description?: string;
  /** Automatic rotation period in seconds (0: only on request). */
  rotationPeriodSeconds?: number;
  purpose?: KeyPurpose;
  labels?: Context;
}

/** What a grant allows. */
export interface GrantSpec {
  operations: Operation[];
  /** The call's context must equal this. */
  contextEquals?: Context;
  /** The call's context must contain these pairs. */
  contextSubset?: Context;
  /** When the grant expires (unix seconds); 0 or absent: never. */
  expiresAtUnix?: number;
}

/** Options of listKeys. */
export interface ListKeysOptions extends CallOptions {
  prefix?: string;
  labelSelector?: Context;
  pageSize?: number;
}

/** The client of the control plane (every admin RPC); Client extends it. */
export class AdminClient extends BaseClient {
  /** Creates a key owned by `owner`. */
  createKey(keyId: string, owner: string, options: CreateKeyOptions = {}): Promise<KeyInfo> {
    return this.ask(
      "CreateKey",
      {
        keyId,
        owner,
        description: options.description ?? "",
        rotationPeriodSeconds: options.rotationPeriodSeconds ?? 0,
        purpose: options.purpose ?? "KEY_PURPOSE_UNSPECIFIED",
        labels: contextObject(options.labels),
      },
      options,
    );
  }

  /** Adds a version and makes it primary. */
  rotateKey(keyId: string, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("RotateKey", { keyId }, options);
  }

  /** A key's metadata. */
  getKey(keyId: string, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("GetKey", { keyId }, options);
  }

  /** Disables a key: the data plane refuses it (KeyDisabled) until enableKey. */
  disableKey(keyId: string, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("DisableKey", { keyId }, options);
  }

  /** Enables a disabled key. */
  enableKey(keyId: string, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("EnableKey", { keyId }, options);
  }

  /** Refuses ciphertexts of versions below `version`. */
  setMinDecryptionVersion(keyId: string, version: number, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("SetMinDecryptionVersion", { keyId, version }, options);
  }

  /** Sets (or with 0, clears) the automatic rotation period. */
  setRotationPeriod(keyId: string, seconds: number, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("SetRotationPeriod", { keyId, rotationPeriodSeconds: seconds }, options);
  }

  /** Destroys one version's material for ever. */
  destroyKeyVersion(keyId: string, version: number, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("DestroyKeyVersion", { keyId, version }, options);
  }

  /** One page of keys. */
  listKeysPage(pageToken = "", options: ListKeysOptions = {}): Promise<ListKeysPage> {
    return this.ask(
      "ListKeys",
      {
        prefix: options.prefix ?? "",
        pageSize: options.pageSize ?? 0,
        pageToken,
        labelSelector: contextObject(options.labelSelector),
      },
      options,
    );
  }

  /** Every key (following the pages). */
  async listKeys(options: ListKeysOptions = {}): Promise<KeyInfo[]> {
    const keys: KeyInfo[] = [];
    let token = "";
    do {
      const page = await this.listKeysPage(token, options);
      keys.push(...page.keys);
      token = page.nextPageToken;
    } while (token);
    return keys;
  }

  /** Replaces a key's labels. */
  setKeyLabels(keyId: string, labels: Context, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("SetKeyLabels", { keyId, labels: contextObject(labels) }, options);
  }

  /** Gives a key to another owner. */
  transferKeyOwnership(keyId: string, newOwner: string, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("TransferKeyOwnership", { keyId, newOwner }, options);
  }

  /** Replaces a key's description. */
  updateKeyDescription(
    keyId: string,
    description: string,
    options?: CallOptions,
  ): Promise<KeyInfo> {
    return this.ask("UpdateKeyDescription", { keyId, description }, options);
  }

  /** Schedules a key's deletion after `pendingDays` (0: the server's default). */
  scheduleKeyDeletion(keyId: string, pendingDays = 0, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("ScheduleKeyDeletion", { keyId, pendingDays }, options);
  }

  /** Cancels a scheduled deletion. */
  cancelKeyDeletion(keyId: string, options?: CallOptions): Promise<KeyInfo> {
    return this.ask("CancelKeyDeletion", { keyId }, options);
  }

  private grantRequest(keyId: string, grantee: string, spec: GrantSpec): object {
    return {
      keyId,
      grantee,
      operations: spec.operations,
      contextEquals: contextObject(spec.contextEquals),
      contextSubset: contextObject(spec.contextSubset),
      expiresAtUnix: spec.expiresAtUnix ?? 0,
    };
  }

  /** Grants `grantee` operations on a key. */
  createGrant(
    keyId: string,
    grantee: string,
    spec: GrantSpec,
    options?: CallOptions,
  ): Promise<KeyInfo> {
    return this.ask("CreateGrant", this.grantRequest(keyId, grantee, spec), options);
  }

  /** Revokes operations of a grant. */
  revokeGrant(
    keyId: string,
    grantee: string,
    spec: GrantSpec,
    options?: CallOptions,
  ): Promise<KeyInfo> {
    return this.ask("RevokeGrant", this.grantRequest(keyId, grantee, spec), options);
  }

  /** Creates an alias of a key. */
  createAlias(alias: string, keyId: string, options?: CallOptions): Promise<AliasInfo> {
    return this.ask("CreateAlias", { alias, keyId }, options);
  }

  /** Points an alias at another key. */
  updateAlias(alias: string, keyId: string, options?: CallOptions): Promise<AliasInfo> {
    return this.ask("UpdateAlias", { alias, keyId }, options);
  }

  /** Deletes an alias. */
  async deleteAlias(alias: string, options?: CallOptions): Promise<void> {
    await this.ask("DeleteAlias", { alias }, options);
  }

  /** Every alias starting with `prefix`. */
  async listAliases(prefix = "", options?: CallOptions): Promise<AliasInfo[]> {
    const out: AliasInfo[] = [];
    let pageToken = "";
    do {
      const page = await this.ask<{ aliases: AliasInfo[]; nextPageToken: string }>(
        "ListAliases",
        { prefix, pageSize: 0, pageToken },
        options,
      );
      out.push(...page.aliases);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Binds a role to an identity. */
  addRoleBinding(role: string, identity: string, options?: CallOptions): Promise<RoleBinding> {
    return this.ask("AddRoleBinding", { role, identity }, options);
  }

  /** Removes a role binding. */
  async removeRoleBinding(role: string, identity: string, options?: CallOptions): Promise<void> {
    await this.ask("RemoveRoleBinding", { role, identity }, options);
  }

  /** Every role binding. */
  async listRoleBindings(options?: CallOptions): Promise<RoleBinding[]> {
    return (await this.ask<{ bindings: RoleBinding[] }>("ListRoleBindings", {}, options)).bindings;
  }

  /** Seals the server: every key call fails (Sealed) until unsealed. */
  seal(options?: CallOptions): Promise<SealStatus> {
    return this.ask("Seal", {}, options);
  }

  /** Approves unsealing (with the unseal token when the server requires one). */
  unseal(token = "", options?: CallOptions): Promise<SealStatus> {
    return this.ask("Unseal", { unsealToken: token }, options);
  }

  /** The server's seal state. */
  status(options?: CallOptions): Promise<SealStatus> {
    return this.ask("GetStatus", {}, options);
  }

  /** Rotates the master key; returns the new master key's description. */
  async rotateMasterKey(
    newMasterKey = "",
    awsEndpoint = "",
    options?: CallOptions,
  ): Promise<string> {
    const answer = await this.ask<{ masterKey: string }>(
      "RotateMasterKey",
      { newMasterKey, awsEndpoint },
      options,
    );
    return answer.masterKey;
  }

  /** Starts a root key rotation. */
  rotateRootKey(options?: CallOptions): Promise<SealStatus> {
    return this.ask("RotateRootKey", {}, options);
  }

  /** The server's backup, piece by piece (not retried: restart it on failure). */
  async *createBackup(options?: CallOptions): AsyncGenerator<Buffer> {
    for await (const chunk of this.serverStream<{ data: Buffer }>("CreateBackup", {}, options))
      yield chunk.data;
  }

  /** Checks the audit log's hash chain. */
  verifyAuditLog(options?: CallOptions): Promise<AuditLogReport> {
    return this.ask("VerifyAuditLog", {}, options);
  }
}
