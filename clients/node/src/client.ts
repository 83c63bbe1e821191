/**
 * The tresor client: the stream envelope (sealStream/openStream,
 * sealBytes/openBytes; docs/FORMAT.md section 10, byte-compatible with the
 * Rust SDK) on top of the data plane (CryptoClient, crypto.ts) and the
 * control plane (AdminClient, admin.ts). Promise-based; every call takes
 * `{ timeoutMs, signal }`.
 */

import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type ContextOptions, CryptoClient } from "./crypto.js";
import { CachedDataKey } from "./data-key-cache.js";
import * as env from "./envelope.js";
import { ProtocolError, TresorError } from "./errors.js";
import { DEFAULT_CHUNK_SIZE, VERSION_1 } from "./stream-format.js";
import type { StreamSummary } from "./types.js";

/** Options of sealing a stream. */
export interface SealOptions extends ContextOptions {
  /** Plaintext bytes per chunk: a power of two from 1 KiB to 16 MiB. Default 64 KiB. */
  chunkSize?: number;
  /** End the destination when done (default true). */
  end?: boolean;
}

/** Options of opening a stream. */
export interface OpenOptions extends ContextOptions {
  /** End the destination when done (default true). */
  end?: boolean;
}

/** A tresor client. `new Client({ addr, ca, cert, key })` or `Client.fromEnv()`. */
export class Client extends CryptoClient {
  // --- stream envelope ------------------------------------------------------

  /**
   * Seals everything `source` yields into `destination` as one stream
   * envelope under a fresh data key of `keyId`, bound to the context, in
   * constant memory (one chunk buffer). One GenerateDataKey call; the payload
   * never leaves this process. Ends `destination` unless `end: false`.
   */
  async sealStream(
    keyId: string,
    source: env.ByteSource,
    destination: Writable | NodeJS.WritableStream,
    options: SealOptions = {},
  ): Promise<StreamSummary> {
    const key = await this.dataKeyForSealing(keyId, options, undefined);
    const summary: StreamSummary = {
      bytesIn: 0,
      bytesOut: 0,
      chunks: 0,
      keyVersion: key.keyVersion,
    };
    const sealer = env.newSealer(key.key, keyId, key.wrappedKey, options.context, {
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    });
    await pipeline(
      Readable.from(env.sealChunks(sealer, source, summary), { objectMode: false }),
      destination,
      {
        end: options.end ?? true,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    return summary;
  }

  /**
   * Opens a stream of sealStream from `source` into `destination`: checks that
   * the key id in its header is one of `keyIds` (else UnexpectedKey, and
   * tresor is not asked), has tresor unwrap the data key (one DecryptDataKey:
   * the Decrypt grant and exactly the sealing context), then opens chunk by
   * chunk in constant memory.
   *
   * **Writes as it goes**: when this rejects, `destination` may hold a prefix
   * of the plaintext, which must be discarded (write to a temporary file and
   * rename it on success).
   */
  async openStream(
    keyIds: string | Iterable<string>,
    source: env.ByteSource,
    destination: Writable | NodeJS.WritableStream,
    options: OpenOptions = {},
  ): Promise<StreamSummary> {
    const { reader, opener, summary } = await this.startOpening(keyIds, source, options);
    await pipeline(
      Readable.from(env.openChunks(opener, reader, summary), { objectMode: false }),
      destination,
      {
        end: options.end ?? true,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    return summary;
  }

  /** Seals a payload held in memory as one stream (a cached data key may serve it when the cache is on). */
  async sealBytes(
    keyId: string,
    plaintext: Uint8Array,
    options: SealOptions = {},
  ): Promise<Buffer> {
    const key = await this.dataKeyForSealing(keyId, options, plaintext.length);
    return env.sealWithKey(key.key, keyId, key.wrappedKey, options.context, plaintext, {
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    });
  }

  /** Opens a stream held in memory; nothing of the plaintext is returned unless all of it authenticated. */
  async openBytes(
    keyIds: string | Iterable<string>,
    stream: Uint8Array,
    options: ContextOptions = {},
  ): Promise<Buffer> {
    const { reader, opener, summary } = await this.startOpening(keyIds, [stream], options);
    const parts: Buffer[] = [];
    for await (const part of env.openChunks(opener, reader, summary)) parts.push(part);
    return Buffer.concat(parts);
  }

  private async startOpening(
    keyIds: string | Iterable<string>,
    source: env.ByteSource,
    options: ContextOptions,
  ) {
    const reader = new env.ByteReader(source);
    const header = await env.readHeader(reader);
    env.checkHeader(header, env.keyIdSet(keyIds), this.legacyStreams);
    const [key, keyVersion] = await this.unwrapDataKey(
      header.keyId,
      header.wrappedKey,
      header.version,
      options,
    );
    const opener = env.newOpener(key, header, options.context);
    const summary: StreamSummary = {
      bytesIn: header.raw.length,
      bytesOut: 0,
      chunks: 0,
      keyVersion,
    };
    return { reader, opener, summary };
  }

  /** A data key for one message: cached when the cache is on and the length known, else fresh. */
  private async dataKeyForSealing(
    keyId: string,
    options: ContextOptions,
    knownLength: number | undefined,
  ): Promise<CachedDataKey> {
    const cache = knownLength === undefined ? undefined : this.shared.cache;
    if (cache && knownLength !== undefined) {
      const cached = cache.takeSealing(keyId, options.context, knownLength);
      if (cached) return cached;
    }
    const fresh = await this.generateDataKey(keyId, options);
    if (fresh.plaintextKey.length !== 32) throw new ProtocolError("the data key is not 32 bytes");
    const key = new CachedDataKey(fresh.plaintextKey, fresh.wrappedKey, fresh.keyVersion);
    if (cache && knownLength !== undefined)
      cache.putSealing(keyId, options.context, knownLength, key);
    return key;
  }

  /** A stream's data key: DecryptDataKey (v2, cached when on) or Decrypt (v1, never cached). */
  private async unwrapDataKey(
    keyId: string,
    wrapped: Buffer,
    version: number,
    options: ContextOptions,
  ): Promise<[Buffer, number]> {
    const cache = this.shared.cache;
    let key: Buffer;
    let keyVersion: number;
    try {
      if (version === VERSION_1) {
        const opened = await this.decrypt(keyId, wrapped, options);
        return [env.dataKeyBytes(opened.plaintext), opened.keyVersion];
      }
      const cached = cache?.getOpening(keyId, options.context, wrapped);
      if (cached) return [cached.key, cached.keyVersion];
      const unwrapped = await this.decryptDataKey(keyId, wrapped, options);
      key = env.dataKeyBytes(unwrapped.plaintextKey);
      keyVersion = unwrapped.keyVersion;
    } catch (e) {
      if (e instanceof TresorError) throw env.unwrapRefused(e);
      throw e;
    }
    cache?.putOpening(keyId, options.context, wrapped, new CachedDataKey(key, wrapped, keyVersion));
    return [key, keyVersion];
  }
}
