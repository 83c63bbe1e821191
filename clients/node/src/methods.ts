/**
 * Every unary RPC of the proto with how it may be repeated (the Rust SDK's
 * and Python SDK's classification). test/units.test.ts checks that the table
 * names exactly the proto's methods.
 */

import type { Service } from "./proto.js";
import { Idempotency } from "./retry.js";

const S = Idempotency.Safe;
const U = Idempotency.Unsafe;

/** Data plane: every call may run twice (a second Encrypt makes another ciphertext). */
export const CRYPTO_METHODS = {
  Encrypt: S,
  Decrypt: S,
  ReEncrypt: S,
  GenerateDataKey: S,
  GenerateDataKeyWithoutPlaintext: S,
  DecryptDataKey: S,
  EncryptBatch: S,
  DecryptBatch: S,
  ReEncryptBatch: S,
  Mac: S,
  VerifyMac: S,
  MacAllVersions: S,
  MacBatch: S,
} as const satisfies Record<string, Idempotency>;

/**
 * Control plane. Unsafe: calls whose second run changes state again, or
 * answers differently (ALREADY_EXISTS, NOT_FOUND) after a lost answer.
 */
export const ADMIN_METHODS = {
  CreateKey: U,
  RotateKey: U,
  GetKey: S,
  DisableKey: S,
  EnableKey: S,
  SetMinDecryptionVersion: S,
  SetRotationPeriod: S,
  DestroyKeyVersion: U,
  ListKeys: S,
  SetKeyLabels: S,
  TransferKeyOwnership: S,
  UpdateKeyDescription: S,
  CreateAlias: U,
  UpdateAlias: S,
  DeleteAlias: U,
  ListAliases: S,
  ScheduleKeyDeletion: S,
  CancelKeyDeletion: S,
  CreateGrant: S,
  RevokeGrant: S,
  Seal: S,
  // Retrying resends the same approval, which never counts twice.
  Unseal: S,
  GetStatus: S,
  RotateMasterKey: U,
  RotateRootKey: U,
  CreateBackup: S,
  VerifyAuditLog: S,
  AddRoleBinding: U,
  RemoveRoleBinding: U,
  ListRoleBindings: S,
} as const satisfies Record<string, Idempotency>;

export type CryptoMethod = keyof typeof CRYPTO_METHODS;
export type AdminMethod = keyof typeof ADMIN_METHODS;

/** The service and idempotency of a method. */
export function lookup(name: CryptoMethod | AdminMethod): {
  service: Service;
  idempotency: Idempotency;
} {
  if (name in CRYPTO_METHODS)
    return { service: "Crypto", idempotency: CRYPTO_METHODS[name as CryptoMethod] };
  return { service: "Admin", idempotency: ADMIN_METHODS[name as AdminMethod] };
}
