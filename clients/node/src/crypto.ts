/**
 * The data plane (service tresor.v1.Crypto): Encrypt, Decrypt, ReEncrypt,
 * data keys, the batches and the blind-index MAC calls. Every call may be
 * retried (a second Encrypt makes another ciphertext; a MAC is the same
 * token again). Client (client.ts) adds the stream envelope on top.
 */

import { AdminClient } from "./admin.js";
import { type Context, contextObject } from "./context.js";
import { fromItemStatus, ProtocolError } from "./errors.js";
import type { CallOptions } from "./transport.js";
import {
  DataKey,
  DecryptedDataKey,
  type DecryptItem,
  DecryptResult,
  type EncryptItem,
  type EncryptResult,
  type ItemResult,
  type MacItem,
  type MacResult,
  type ReEncryptItem,
  type VerifyMacResult,
  type WrappedKey,
} from "./types.js";

/** Options of the calls that take an encryption context. */
export interface ContextOptions extends CallOptions {
  /** The encryption context (bound to the ciphertext; needed again to decrypt). */
  context?: Context;
}

/** Options of the MAC calls. */
export interface MacOptions extends ContextOptions {
  /** HMAC bytes the token keeps, 4 to 32 (default 32); verifyMac must be given the same. */
  truncateBytes?: number;
}

interface RawCiphertext {
  ciphertext: Buffer;
  keyVersion: number;
  keyId: string;
}
interface RawPlaintext {
  plaintext: Buffer;
  keyVersion: number;
  keyId: string;
}
interface RawDataKey {
  plaintextKey: Buffer;
  wrappedKey: Buffer;
  keyVersion: number;
  keyId: string;
}
interface RawItem {
  result?: string;
  error?: { code: number; message: string };
  [field: string]: unknown;
}

const encrypted = (r: RawCiphertext): EncryptResult => ({
  ciphertext: r.ciphertext,
  keyVersion: r.keyVersion,
  keyId: r.keyId,
});
const decrypted = (r: RawPlaintext): DecryptResult =>
  new DecryptResult(r.plaintext, r.keyVersion, r.keyId);

function reEncryptRequest(item: ReEncryptItem): object {
  return {
    keyId: item.keyId,
    ciphertext: item.ciphertext,
    context: contextObject(item.context),
    destinationKeyId: item.destinationKeyId ?? "",
    destinationContext: contextObject(item.destinationContext),
  };
}

interface RawMac {
  mac: Buffer;
  keyVersion: number;
  keyId: string;
}

const macResult = (r: RawMac): MacResult => ({
  mac: r.mac,
  keyVersion: r.keyVersion,
  keyId: r.keyId,
});

function macRequest(item: MacItem): object {
  return {
    keyId: item.keyId,
    message: item.message,
    context: contextObject(item.context),
    truncateBytes: item.truncateBytes ?? 0,
  };
}

/** The data-plane client (every Crypto RPC), with the control plane it extends; Client extends it. */
export class CryptoClient extends AdminClient {
  // --- data plane -----------------------------------------------------------

  /** Encrypts `plaintext` under the primary version of `keyId`, bound to `context`. */
  async encrypt(
    keyId: string,
    plaintext: Uint8Array,
    options: ContextOptions = {},
  ): Promise<EncryptResult> {
    const r = await this.ask<RawCiphertext>(
      "Encrypt",
      { keyId, plaintext, context: contextObject(options.context) },
      options,
    );
    return encrypted(r);
  }

  /** Decrypts a ciphertext of `keyId` under exactly the context it was sealed with. */
  async decrypt(
    keyId: string,
    ciphertext: Uint8Array,
    options: ContextOptions = {},
  ): Promise<DecryptResult> {
    const r = await this.ask<RawPlaintext>(
      "Decrypt",
      { keyId, ciphertext, context: contextObject(options.context) },
      options,
    );
    return decrypted(r);
  }

  /** Re-encrypts under the key's primary version (or, naming a destination, under another key). */
  async reEncrypt(item: ReEncryptItem, options?: CallOptions): Promise<EncryptResult> {
    return encrypted(await this.ask<RawCiphertext>("ReEncrypt", reEncryptRequest(item), options));
  }

  /** A fresh data key (default 32 bytes) and its wrapped form under `keyId` and the context. */
  async generateDataKey(
    keyId: string,
    options: ContextOptions & { keyBytes?: number } = {},
  ): Promise<DataKey> {
    const r = await this.ask<RawDataKey>(
      "GenerateDataKey",
      { keyId, context: contextObject(options.context), keyBytes: options.keyBytes ?? 0 },
      options,
    );
    return new DataKey(r.plaintextKey, r.wrappedKey, r.keyVersion, r.keyId);
  }

  /** A fresh wrapped data key, without its plaintext. */
  async generateDataKeyWithoutPlaintext(
    keyId: string,
    options: ContextOptions & { keyBytes?: number } = {},
  ): Promise<WrappedKey> {
    const r = await this.ask<WrappedKey>(
      "GenerateDataKeyWithoutPlaintext",
      { keyId, context: contextObject(options.context), keyBytes: options.keyBytes ?? 0 },
      options,
    );
    return { wrappedKey: r.wrappedKey, keyVersion: r.keyVersion, keyId: r.keyId };
  }

  /** Unwraps a data key of generateDataKey (same key id and context). */
  async decryptDataKey(
    keyId: string,
    wrappedKey: Uint8Array,
    options: ContextOptions = {},
  ): Promise<DecryptedDataKey> {
    const r = await this.ask<RawDataKey>(
      "DecryptDataKey",
      { keyId, wrappedKey, context: contextObject(options.context) },
      options,
    );
    return new DecryptedDataKey(r.plaintextKey, r.keyVersion, r.keyId);
  }

  /** Many Encrypt calls in one: one result or error per item, in order. */
  async encryptBatch(
    items: readonly EncryptItem[],
    options?: CallOptions,
  ): Promise<ItemResult<EncryptResult>[]> {
    if (items.length === 0) return [];
    const request = {
      items: items.map((i) => ({
        keyId: i.keyId,
        plaintext: i.plaintext,
        context: contextObject(i.context),
      })),
    };
    return this.batch("EncryptBatch", request, items.length, "encrypted", encrypted, options);
  }

  /** Many Decrypt calls in one: one result or error per item, in order. */
  async decryptBatch(
    items: readonly DecryptItem[],
    options?: CallOptions,
  ): Promise<ItemResult<DecryptResult>[]> {
    if (items.length === 0) return [];
    const request = {
      items: items.map((i) => ({
        keyId: i.keyId,
        ciphertext: i.ciphertext,
        context: contextObject(i.context),
      })),
    };
    return this.batch("DecryptBatch", request, items.length, "decrypted", decrypted, options);
  }

  /** Many ReEncrypt calls in one: one result or error per item, in order. */
  async reEncryptBatch(
    items: readonly ReEncryptItem[],
    options?: CallOptions,
  ): Promise<ItemResult<EncryptResult>[]> {
    if (items.length === 0) return [];
    const request = { items: items.map(reEncryptRequest) };
    return this.batch("ReEncryptBatch", request, items.length, "encrypted", encrypted, options);
  }

  // --- blind indexes (MAC keys) ----------------------------------------------

  /**
   * The MAC token of `message` under the primary version of a MAC key, bound
   * to the context; `truncateBytes` (4 to 32, default 32) HMAC bytes kept.
   */
  async mac(keyId: string, message: Uint8Array, options: MacOptions = {}): Promise<MacResult> {
    return macResult(
      await this.ask<RawMac>("Mac", macRequest({ keyId, message, ...options }), options),
    );
  }

  /**
   * Whether `mac` is the token of `message` under the key (any version from
   * its minimum decryption version up) and the context, with the same
   * `truncateBytes` it was made with.
   */
  async verifyMac(
    keyId: string,
    message: Uint8Array,
    mac: Uint8Array,
    options: MacOptions = {},
  ): Promise<VerifyMacResult> {
    const r = await this.ask<{ valid: boolean; keyVersion: number; keyId: string }>(
      "VerifyMac",
      { ...macRequest({ keyId, message, ...options }), mac },
      options,
    );
    return { valid: r.valid, keyVersion: r.keyVersion, keyId: r.keyId };
  }

  /** The tokens of `message` under every live version, primary first (to look rows up across a rotation). */
  async macAllVersions(
    keyId: string,
    message: Uint8Array,
    options: MacOptions = {},
  ): Promise<MacResult[]> {
    const r = await this.ask<{ macs: RawMac[] }>(
      "MacAllVersions",
      macRequest({ keyId, message, ...options }),
      options,
    );
    return r.macs.map(macResult);
  }

  /** Many Mac calls in one: one result or error per item, in order. */
  async macBatch(
    items: readonly MacItem[],
    options?: CallOptions,
  ): Promise<ItemResult<MacResult>[]> {
    if (items.length === 0) return [];
    const request = { items: items.map(macRequest) };
    return this.batch("MacBatch", request, items.length, "mac", macResult, options);
  }

  private async batch<Raw, T>(
    name: "EncryptBatch" | "DecryptBatch" | "ReEncryptBatch" | "MacBatch",
    request: object,
    count: number,
    okField: string,
    convert: (raw: Raw) => T,
    options?: CallOptions,
  ): Promise<ItemResult<T>[]> {
    const { response, requestId } = await this.call<{ results: RawItem[] }>(name, request, options);
    const results = response.results;
    if (results.length !== count) {
      throw new ProtocolError(`the server answered ${results.length} results for ${count} items`);
    }
    return results.map((item, index) => {
      if (item.result === okField) return convert(item[okField] as Raw);
      if (item.result === "error" && item.error)
        return fromItemStatus(item.error.code, item.error.message, requestId);
      throw new ProtocolError(`the server answered nothing for item ${index}`);
    });
  }
}
