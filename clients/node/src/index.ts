/**
 * @tresor/client: the TypeScript SDK for Node.js of tresor. It mirrors the
 * Rust SDK (crates/tresor-client): the data plane, the control plane, the
 * stream envelope (docs/FORMAT.md section 10), typed errors, retries and the
 * data-key cache.
 */

export {
  AdminClient,
  type CreateKeyOptions,
  type GrantSpec,
  type ListKeysOptions,
} from "./admin.js";
export type { ClientOptions } from "./base.js";
export { Client, type OpenOptions, type SealOptions } from "./client.js";
export { type ConnectionOptions, optionsFromEnv, type Pem, parseAddress } from "./connection.js";
export { type Context, canonicalContext } from "./context.js";
export { type ContextOptions, CryptoClient, type MacOptions } from "./crypto.js";
export {
  CachedDataKey,
  DataKeyCache,
  type DataKeyCacheLimits,
  DEFAULT_CACHE_LIMITS,
} from "./data-key-cache.js";
export type { ByteSource } from "./envelope.js";
export * from "./errors.js";
export { Idempotency, RetryPolicy, type RetryPolicyOptions } from "./retry.js";
export { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "./stream-format.js";
export type { Answer, CallOptions } from "./transport.js";
export * from "./types.js";
