/**
 * The stream envelope's wire format and cipher (docs/FORMAT.md section 10).
 *
 * Pure and synchronous: no I/O and no server. The header layout, the key
 * derivation and the chunk nonces live here and nowhere else, so this module
 * is what must stay byte-compatible with the Rust SDK.
 *
 *     header  = "TRSS" | version | u32be(C) | u16be(k) | u16be(w)
 *               | salt(32) | key id(k) | wrapped key(w) | commitment(32)
 *     key     = HMAC-SHA256(data key, u32be(20) | "tresor/stream v1 key"
 *                           | header without commitment | canonical context)
 *     commit  = SHA-256("tresor/stream v1 commitment" | key)
 *     chunk i = AES-256-GCM(key, u88be(i) | last, aad = empty)
 */

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { inspect } from "node:util";
import { type Context, canonicalContext } from "./context.js";

export const MAGIC = Buffer.from("TRSS", "latin1");
/** Stream version 1: the wrapped key is an Encrypt ciphertext (legacy). */
export const VERSION_1 = 1;
/** Stream version 2: the wrapped key is a GenerateDataKey ciphertext. */
export const VERSION_2 = 2;
export const CURRENT_VERSION = VERSION_2;
/** Bytes of the header's fixed part: magic, version, chunk size, k, w, salt. */
export const FIXED_HEADER_LEN = 4 + 1 + 4 + 2 + 2 + 32;
export const SALT_LEN = 32;
export const COMMITMENT_LEN = 32;
export const TAG_LEN = 16;
export const MAX_KEY_ID_LEN = 1024;
export const MAX_WRAPPED_KEY_LEN = 1024;
export const MIN_CHUNK_SIZE = 1 << 10;
export const MAX_CHUNK_SIZE = 1 << 24;
/** The default plaintext bytes per chunk (64 KiB), as the Rust SDK's. */
export const DEFAULT_CHUNK_SIZE = 1 << 16;
/** Most chunks one stream may hold. */
export const MAX_CHUNKS = 2 ** 32;
export const DATA_KEY_LEN = 32;

const KEY_LABEL = Buffer.from("tresor/stream v1 key", "latin1");
const COMMIT_LABEL = Buffer.from("tresor/stream v1 commitment", "latin1");

/** Internal: the input is not a stream envelope. */
export class StreamFormatError extends Error {}
/** Internal: the stream does not authenticate. */
export class StreamAuthError extends Error {}
/** Internal: more chunks than a stream may hold, or an oversized header field. */
export class StreamTooLargeError extends Error {}

/** Whether `n` is a power of two from 1 KiB to 16 MiB. */
export function isValidChunkSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_CHUNK_SIZE && n <= MAX_CHUNK_SIZE && (n & (n - 1)) === 0;
}

/** `chunkSize` if valid, else RangeError. */
export function checkChunkSize(chunkSize: number): number {
  if (!isValidChunkSize(chunkSize)) {
    throw new RangeError("the chunk size must be a power of two from 1024 to 16777216 bytes");
  }
  return chunkSize;
}

/** A parsed header; nothing in it is authenticated until the commitment is. */
export interface StreamHeader {
  readonly raw: Buffer;
  readonly version: number;
  readonly chunkSize: number;
  readonly keyId: string;
  readonly wrappedKey: Buffer;
}

/** The whole header's length, from its first FIXED_HEADER_LEN bytes. */
export function headerLength(fixed: Uint8Array): number {
  const buf = Buffer.from(fixed.buffer, fixed.byteOffset, fixed.byteLength);
  if (buf.length < FIXED_HEADER_LEN || !buf.subarray(0, 4).equals(MAGIC))
    throw new StreamFormatError();
  const version = buf[4];
  if (version !== VERSION_1 && version !== VERSION_2) throw new StreamFormatError();
  const chunkSize = buf.readUInt32BE(5);
  const k = buf.readUInt16BE(9);
  const w = buf.readUInt16BE(11);
  if (!isValidChunkSize(chunkSize) || k > MAX_KEY_ID_LEN || w > MAX_WRAPPED_KEY_LEN) {
    throw new StreamFormatError();
  }
  return FIXED_HEADER_LEN + k + w + COMMITMENT_LEN;
}

/** Parses exactly one header (`raw` of headerLength bytes). */
export function parseHeader(raw: Buffer): StreamHeader {
  const total = headerLength(raw.subarray(0, FIXED_HEADER_LEN));
  if (raw.length !== total) throw new StreamFormatError();
  const k = raw.readUInt16BE(9);
  const keyIdBytes = raw.subarray(FIXED_HEADER_LEN, FIXED_HEADER_LEN + k);
  let keyId: string;
  try {
    keyId = new TextDecoder("utf-8", { fatal: true }).decode(keyIdBytes);
  } catch {
    throw new StreamFormatError();
  }
  return {
    raw: Buffer.from(raw),
    version: raw[4] as number,
    chunkSize: raw.readUInt32BE(5),
    keyId,
    wrappedKey: Buffer.from(raw.subarray(FIXED_HEADER_LEN + k, total - COMMITMENT_LEN)),
  };
}

/** The stream key and the commitment (section 10.2). */
function derive(
  dataKey: Uint8Array,
  bound: Buffer,
  context: Context | undefined,
): [Buffer, Buffer] {
  if (dataKey.length !== DATA_KEY_LEN) throw new RangeError("a stream's data key is 32 bytes");
  const label = Buffer.alloc(4);
  label.writeUInt32BE(KEY_LABEL.length);
  const streamKey = createHmac("sha256", dataKey)
    .update(label)
    .update(KEY_LABEL)
    .update(bound)
    .update(canonicalContext(context))
    .digest();
  const commitment = createHash("sha256").update(COMMIT_LABEL).update(streamKey).digest();
  return [streamKey, commitment];
}

/** nonce(i, last) = u88be(i) || last. */
function nonce(index: number, last: boolean): Buffer {
  const out = Buffer.alloc(12);
  // index < 2^32 (MAX_CHUNKS): the upper 7 bytes of the 11 stay zero.
  out.writeUInt32BE(index, 7);
  out[11] = last ? 1 : 0;
  return out;
}

/** AES-256-GCM under one stream key, with the chunk counter. The key never shows in inspect output. */
abstract class ChunkCipher {
  readonly #key: Buffer;
  #next = 0;
  readonly chunkSize: number;

  constructor(streamKey: Buffer, chunkSize: number) {
    this.#key = streamKey;
    this.chunkSize = chunkSize;
  }

  protected get key(): Buffer {
    return this.#key;
  }

  protected takeNonce(last: boolean): Buffer {
    if (this.#next >= MAX_CHUNKS) throw new StreamTooLargeError();
    return nonce(this.#next++, last);
  }

  [inspect.custom](): string {
    return `${this.constructor.name} { chunkSize: ${this.chunkSize}, key: <redacted> }`;
  }
}

/** Options of a StreamSealer beyond the required ones (tests pin the salt). */
export interface SealerOptions {
  chunkSize?: number;
  version?: number;
  salt?: Uint8Array;
}

/** Seals one stream: `header`, then every chunk in order, the last one last. */
export class StreamSealer extends ChunkCipher {
  /** The header to write before the first chunk. */
  readonly header: Buffer;

  constructor(
    dataKey: Uint8Array,
    keyId: string,
    wrappedKey: Uint8Array,
    context: Context | undefined,
    options: SealerOptions = {},
  ) {
    const chunkSize = checkChunkSize(options.chunkSize ?? DEFAULT_CHUNK_SIZE);
    const version = options.version ?? CURRENT_VERSION;
    const keyIdBytes = Buffer.from(keyId, "utf8");
    if (keyIdBytes.length > MAX_KEY_ID_LEN || wrappedKey.length > MAX_WRAPPED_KEY_LEN) {
      throw new StreamTooLargeError();
    }
    const salt = options.salt ?? randomBytes(SALT_LEN);
    if (salt.length !== SALT_LEN || (version !== VERSION_1 && version !== VERSION_2)) {
      throw new RangeError("a 32-byte salt and stream version 1 or 2");
    }
    const fixed = Buffer.alloc(13);
    MAGIC.copy(fixed, 0);
    fixed[4] = version;
    fixed.writeUInt32BE(chunkSize, 5);
    fixed.writeUInt16BE(keyIdBytes.length, 9);
    fixed.writeUInt16BE(wrappedKey.length, 11);
    const bound = Buffer.concat([fixed, salt, keyIdBytes, wrappedKey]);
    const [streamKey, commitment] = derive(dataKey, bound, context);
    super(streamKey, chunkSize);
    this.header = Buffer.concat([bound, commitment]);
  }

  /** Seals the next chunk: exactly chunkSize bytes unless it is the last. */
  seal(chunk: Uint8Array, last: boolean): Buffer {
    return Buffer.concat(this.sealParts(chunk, last));
  }

  /** seal's output as its two parts, the ciphertext and the tag, which saves a copy when streaming. */
  sealParts(chunk: Uint8Array, last: boolean): [body: Buffer, tag: Buffer] {
    if (chunk.length > this.chunkSize || (!last && chunk.length !== this.chunkSize)) {
      throw new RangeError("only the last chunk may be shorter than the chunk size");
    }
    const cipher = createCipheriv("aes-256-gcm", this.key, this.takeNonce(last));
    const body = cipher.update(chunk);
    cipher.final();
    return [body, cipher.getAuthTag()];
  }
}

/** Opens one stream whose header was parsed, once its commitment checked out. */
export class StreamOpener extends ChunkCipher {
  constructor(dataKey: Uint8Array, header: StreamHeader, context: Context | undefined) {
    const bound = header.raw.subarray(0, header.raw.length - COMMITMENT_LEN);
    const [streamKey, commitment] = derive(dataKey, bound, context);
    if (!timingSafeEqual(commitment, header.raw.subarray(header.raw.length - COMMITMENT_LEN))) {
      throw new StreamAuthError();
    }
    super(streamKey, header.chunkSize);
  }

  /** Bytes of a full sealed chunk (chunk size plus the tag). */
  get sealedChunkSize(): number {
    return this.chunkSize + TAG_LEN;
  }

  /** Opens the next sealed chunk; StreamAuthError if it does not authenticate. */
  open(sealed: Uint8Array, last: boolean): Buffer {
    const full = this.sealedChunkSize;
    if (sealed.length < TAG_LEN || sealed.length > full || (!last && sealed.length !== full)) {
      throw new StreamAuthError();
    }
    let iv: Buffer;
    try {
      iv = this.takeNonce(last);
    } catch {
      throw new StreamAuthError();
    }
    const split = sealed.length - TAG_LEN;
    const decipher = createDecipheriv("aes-256-gcm", this.key, iv);
    decipher.setAuthTag(sealed.subarray(split));
    const body = decipher.update(sealed.subarray(0, split));
    try {
      decipher.final();
    } catch {
      throw new StreamAuthError();
    }
    return body;
  }
}
