/**
 * What the calls take and give. Secrets (plaintexts, data keys) are held in
 * classes whose inspect and JSON output redact them, so they never end up in
 * a log line by accident.
 */

import { inspect } from "node:util";
import type { Context } from "./context.js";
import type { TresorError } from "./errors.js";

const REDACTED = "<redacted>";

/** A ciphertext of Encrypt or ReEncrypt. */
export interface EncryptResult {
  ciphertext: Buffer;
  keyVersion: number;
  keyId: string;
}

/** A plaintext of Decrypt (redacted in inspect and JSON output). */
export class DecryptResult {
  constructor(
    readonly plaintext: Buffer,
    readonly keyVersion: number,
    readonly keyId: string,
  ) {}
  [inspect.custom](): string {
    return `DecryptResult { plaintext: ${REDACTED}, keyVersion: ${this.keyVersion}, keyId: ${JSON.stringify(this.keyId)} }`;
  }
  toJSON(): object {
    return { plaintext: REDACTED, keyVersion: this.keyVersion, keyId: this.keyId };
  }
}

/** A data key of GenerateDataKey: the plaintext key (redacted in output) and its wrapped form. */
export class DataKey {
  constructor(
    readonly plaintextKey: Buffer,
    readonly wrappedKey: Buffer,
    readonly keyVersion: number,
    readonly keyId: string,
  ) {}
  [inspect.custom](): string {
    return `DataKey { plaintextKey: ${REDACTED}, wrappedKey: <${this.wrappedKey.length} bytes>, keyVersion: ${this.keyVersion}, keyId: ${JSON.stringify(this.keyId)} }`;
  }
  toJSON(): object {
    return {
      plaintextKey: REDACTED,
      wrappedKey: this.wrappedKey.toString("base64"),
      keyVersion: this.keyVersion,
      keyId: this.keyId,
    };
  }
}

/** A wrapped data key without its plaintext (GenerateDataKeyWithoutPlaintext). */
export interface WrappedKey {
  wrappedKey: Buffer;
  keyVersion: number;
  keyId: string;
}

/** A data key DecryptDataKey unwrapped (redacted in output). */
export class DecryptedDataKey {
  constructor(
    readonly plaintextKey: Buffer,
    readonly keyVersion: number,
    readonly keyId: string,
  ) {}
  [inspect.custom](): string {
    return `DecryptedDataKey { plaintextKey: ${REDACTED}, keyVersion: ${this.keyVersion}, keyId: ${JSON.stringify(this.keyId)} }`;
  }
  toJSON(): object {
    return { plaintextKey: REDACTED, keyVersion: this.keyVersion, keyId: this.keyId };
  }
}

/** One item of encryptBatch. */
export interface EncryptItem {
  keyId: string;
  plaintext: Uint8Array;
  context?: Context | undefined;
}

/** One item of decryptBatch. */
export interface DecryptItem {
  keyId: string;
  ciphertext: Uint8Array;
  context?: Context | undefined;
}

/** One item of reEncryptBatch (a key move when it names a destination). */
export interface ReEncryptItem {
  keyId: string;
  ciphertext: Uint8Array;
  context?: Context | undefined;
  destinationKeyId?: string | undefined;
  destinationContext?: Context | undefined;
}

/** A MAC token (a blind index), the key version that made it, and the key (an alias's target). */
export interface MacResult {
  mac: Buffer;
  keyVersion: number;
  keyId: string;
}

/** Whether a token is valid, and its key version when it is (0 otherwise). */
export interface VerifyMacResult {
  valid: boolean;
  keyVersion: number;
  keyId: string;
}

/** One item of macBatch. */
export interface MacItem {
  keyId: string;
  message: Uint8Array;
  context?: Context | undefined;
  /** HMAC bytes kept, 4 to 32 (default 32). */
  truncateBytes?: number | undefined;
}

/** What a batch answers per item: the result, or the error the single call would throw. */
export type ItemResult<T> = T | TresorError;

/** What sealing or opening a stream did. */
export interface StreamSummary {
  /** Bytes read. */
  bytesIn: number;
  /** Bytes written. */
  bytesOut: number;
  /** Chunks sealed or opened. */
  chunks: number;
  /** The key version that wrapped the data key. */
  keyVersion: number;
}

/** A key's life-cycle state. */
export type KeyState =
  | "KEY_STATE_UNSPECIFIED"
  | "KEY_STATE_ENABLED"
  | "KEY_STATE_DISABLED"
  | "KEY_STATE_PENDING_DELETION";

/** What a key is for, fixed at creation. */
export type KeyPurpose =
  | "KEY_PURPOSE_UNSPECIFIED"
  | "KEY_PURPOSE_ENCRYPT_DECRYPT"
  | "KEY_PURPOSE_MAC"
  | "KEY_PURPOSE_DETERMINISTIC";

/** An operation a grant allows. */
export type Operation =
  | "OPERATION_ENCRYPT"
  | "OPERATION_DECRYPT"
  | "OPERATION_REENCRYPT"
  | "OPERATION_GENERATE_DATA_KEY"
  | "OPERATION_MAC"
  | "OPERATION_VERIFY_MAC";

/** One version of a key. */
export interface KeyVersion {
  version: number;
  createdAtUnix: number;
  destroyedAtUnix: number;
}

/** A grant on a key. */
export interface Grant {
  grantee: string;
  operations: Operation[];
  contextEquals: Record<string, string>;
  contextSubset: Record<string, string>;
  expiresAtUnix: number;
  expired: boolean;
}

/** A key's metadata (never its material). */
export interface KeyInfo {
  keyId: string;
  owner: string;
  state: KeyState;
  primaryVersion: number;
  minDecryptionVersion: number;
  versions: KeyVersion[];
  createdAtUnix: number;
  deletionAtUnix: number;
  description: string;
  grants: Grant[];
  rotationPeriodSeconds: number;
  nextRotationAtUnix: number;
  purpose: KeyPurpose;
  labels: Record<string, string>;
}

/** One page of listKeys. */
export interface ListKeysPage {
  keys: KeyInfo[];
  nextPageToken: string;
}

/** An alias of a key. */
export interface AliasInfo {
  alias: string;
  keyId: string;
  createdAtUnix: number;
  updatedAtUnix: number;
}

/** A role binding. */
export interface RoleBinding {
  role: string;
  identity: string;
  createdAtUnix: number;
  createdBy: string;
}

/** The server's seal state. */
export interface SealStatus {
  sealed: boolean;
  keyCount: number;
  serverVersion: string;
  masterKey: string;
  rootKeyGeneration: number;
  rootRotationInProgress: boolean;
  rootRotationRewrapped: number;
  rootRotationTotal: number;
  unsealQuorum: number;
  unsealApprovals: number;
  unsealApprovedBy: string[];
  unsealWindowRemainingSeconds: number;
  unsealTokenRequired: boolean;
}

/** The audit log check. */
export interface AuditLogReport {
  intact: boolean;
  files: number;
  records: number;
  firstRecord: number;
  lastRecord: number;
  problem: string;
}
