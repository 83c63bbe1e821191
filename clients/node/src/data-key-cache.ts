/**
 * An optional cache of data keys for sealBytes/openBytes, bounded as the Rust
 * SDK's `DataKeyCache`: one data key serves several messages under the same
 * key id and canonical context until its age (`maxAgeMs`), message count
 * (`maxMessages`) or byte count (`maxBytes`) runs out; at most `maxEntries`
 * keys are kept, least recently used first out. Unwrapped keys for opening
 * are cached under the same age and entry limits, keyed by the exact wrapped
 * key, key id and context.
 *
 * **Off by default, and a trade-off**: a plaintext data key stays in memory
 * up to `maxAgeMs`; the audit log shows one GenerateDataKey per cached key,
 * not per message; disabling the key or revoking a grant stops cached keys
 * only when they expire. Each message still gets its own salt and stream key.
 * Only payloads of known length use it (`sealBytes`); `sealStream` always
 * gets a fresh data key, as in the Rust SDK.
 */

import { inspect } from "node:util";
import { type Context, canonicalContext } from "./context.js";

/** The limits of a DataKeyCache. Default: one minute, 10,000 messages, 1 GiB, 100 keys. */
export interface DataKeyCacheLimits {
  maxAgeMs: number;
  maxMessages: number;
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_CACHE_LIMITS: Readonly<DataKeyCacheLimits> = Object.freeze({
  maxAgeMs: 60_000,
  maxMessages: 10_000,
  maxBytes: 2 ** 30,
  maxEntries: 100,
});

/** A data key (redacted in inspect output), its wrapped form and the key version. */
export class CachedDataKey {
  readonly #key: Buffer;
  constructor(
    key: Uint8Array,
    readonly wrappedKey: Buffer,
    readonly keyVersion: number,
  ) {
    this.#key = Buffer.from(key);
  }
  /** The 32-byte data key. */
  get key(): Buffer {
    return this.#key;
  }
  [inspect.custom](): string {
    return `CachedDataKey { key: <redacted>, keyVersion: ${this.keyVersion} }`;
  }
  toJSON(): object {
    return { key: "<redacted>", keyVersion: this.keyVersion };
  }
}

interface Sealing {
  key: CachedDataKey;
  born: number;
  messages: number;
  bytes: number;
}

interface Opening {
  key: CachedDataKey;
  born: number;
}

function scope(keyId: string, context: Context | undefined): string {
  return `${keyId.length}:${keyId}:${canonicalContext(context).toString("hex")}`;
}

/** Drops the oldest entries of an insertion-ordered map until it holds at most `max`. */
function trim<V>(map: Map<string, V>, max: number): void {
  for (const first of map.keys()) {
    if (map.size <= max) return;
    map.delete(first);
  }
}

/** The cache; shared by clones of a client. */
export class DataKeyCache {
  readonly limits: Readonly<DataKeyCacheLimits>;
  // Map keeps insertion order: re-inserting an entry marks it most recently used.
  readonly #sealing = new Map<string, Sealing>();
  readonly #opening = new Map<string, Opening>();

  constructor(limits: Partial<DataKeyCacheLimits> = {}) {
    this.limits = Object.freeze({ ...DEFAULT_CACHE_LIMITS, ...limits });
    const l = this.limits;
    if (l.maxEntries < 1 || l.maxAgeMs < 0 || l.maxMessages < 0 || l.maxBytes < 0) {
      throw new RangeError("maxEntries >= 1 and non-negative limits");
    }
  }

  [inspect.custom](): string {
    return `DataKeyCache { sealing: ${this.#sealing.size}, opening: ${this.#opening.size} }`;
  }

  /** Data keys cached for sealing and for opening. */
  sizes(): [number, number] {
    return [this.#sealing.size, this.#opening.size];
  }

  /** A cached data key for one more message of `nbytes`, counted against its limits. */
  takeSealing(
    keyId: string,
    context: Context | undefined,
    nbytes: number,
  ): CachedDataKey | undefined {
    const slot = scope(keyId, context);
    const entry = this.#sealing.get(slot);
    if (!entry) return undefined;
    this.#sealing.delete(slot);
    const fits =
      performance.now() - entry.born < this.limits.maxAgeMs &&
      entry.messages < this.limits.maxMessages &&
      entry.bytes + nbytes <= this.limits.maxBytes;
    // Spent or expired: a key past its age or count never comes back.
    if (!fits) return undefined;
    entry.messages += 1;
    entry.bytes += nbytes;
    this.#sealing.set(slot, entry);
    return entry.key;
  }

  /** Caches a fresh data key already used for one message of `nbytes` bytes. */
  putSealing(
    keyId: string,
    context: Context | undefined,
    nbytes: number,
    key: CachedDataKey,
  ): void {
    if (nbytes > this.limits.maxBytes || this.limits.maxMessages === 0) return;
    const slot = scope(keyId, context);
    this.#sealing.delete(slot);
    this.#sealing.set(slot, { key, born: performance.now(), messages: 1, bytes: nbytes });
    trim(this.#sealing, this.limits.maxEntries);
  }

  /** A cached unwrapped key for `wrappedKey` under `keyId` and `context`. */
  getOpening(
    keyId: string,
    context: Context | undefined,
    wrappedKey: Uint8Array,
  ): CachedDataKey | undefined {
    const slot = `${scope(keyId, context)}:${Buffer.from(wrappedKey).toString("hex")}`;
    const entry = this.#opening.get(slot);
    if (!entry) return undefined;
    this.#opening.delete(slot);
    if (performance.now() - entry.born >= this.limits.maxAgeMs) return undefined;
    this.#opening.set(slot, entry);
    return entry.key;
  }

  /** Caches a key the server unwrapped. */
  putOpening(
    keyId: string,
    context: Context | undefined,
    wrappedKey: Uint8Array,
    key: CachedDataKey,
  ): void {
    const slot = `${scope(keyId, context)}:${Buffer.from(wrappedKey).toString("hex")}`;
    this.#opening.delete(slot);
    this.#opening.set(slot, { key, born: performance.now() });
    trim(this.#opening, this.limits.maxEntries);
  }

  /** Forgets every key. */
  clear(): void {
    this.#sealing.clear();
    this.#opening.clear();
  }
}
