/**
 * Sealing and opening stream envelopes over async iterables of bytes, in
 * constant memory: the I/O half of sealStream/openStream (the client gets the
 * data key from tresor and calls these).
 *
 * The input is read one byte ahead of each chunk, so that the chunk the
 * input ends with, and only that one, is sealed (or opened) as the last: a
 * payload of whole chunks ends with a full last chunk, as the Rust SDK writes.
 *
 * **Opening yields as it goes.** Each chunk is yielded once it authenticated;
 * the whole is authentic only when the iteration ends without an error. On
 * any error, discard what was received.
 */

import type { Context } from "./context.js";
import {
  InvalidArgument,
  InvalidCiphertext,
  LegacyStream,
  MalformedStream,
  StreamTooLarge,
  type TresorError,
  UnauthenticStream,
  UnexpectedKey,
} from "./errors.js";
import * as fmt from "./stream-format.js";
import type { StreamSummary } from "./types.js";

/** Bytes to seal or open: a Node Readable, an async generator, an array of Buffers... */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * Reads exact amounts from a source of arbitrarily sized pieces. What it
 * hands out are views of the source's pieces (no copy) unless an amount
 * spans two pieces, so a stream makes little garbage beyond its source's.
 */
export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #pending: Buffer[] = [];
  #have = 0;
  #done = false;

  constructor(source: ByteSource) {
    this.#it =
      Symbol.asyncIterator in source
        ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
        : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  /** Reads pieces until `n` bytes are held or the source ended. */
  async #fill(n: number): Promise<void> {
    while (this.#have < n && !this.#done) {
      const next = await this.#it.next();
      if (next.done) {
        this.#done = true;
        break;
      }
      const piece = next.value;
      if (typeof piece === "string") throw new TypeError("a byte source yields bytes, not strings");
      if (piece.length > 0) {
        this.#pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
        this.#have += piece.length;
      }
    }
  }

  /** Takes `n` held bytes (n <= what is held). */
  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.#pending[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.#pending.shift();
      else this.#pending[0] = first.subarray(n);
      this.#have -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const piece = this.#pending[0] as Buffer;
      const part = Math.min(piece.length, n - at);
      piece.copy(out, at, 0, part);
      at += part;
      if (part === piece.length) this.#pending.shift();
      else this.#pending[0] = piece.subarray(part);
    }
    this.#have -= n;
    return out;
  }

  /** Up to `n` bytes: exactly `n` unless the source ended. */
  async read(n: number): Promise<Buffer> {
    await this.#fill(n);
    return this.#take(Math.min(n, this.#have));
  }

  /**
   * The next chunk of at most `unit` bytes, and whether it is the last: it is
   * when no byte follows it (one byte is read ahead to tell).
   */
  async chunk(unit: number): Promise<{ chunk: Buffer; last: boolean }> {
    await this.#fill(unit + 1);
    const last = this.#have <= unit;
    return { chunk: this.#take(Math.min(unit, this.#have)), last };
  }
}

/** The key ids a stream may name: one id, or several. */
export function keyIdSet(keyIds: string | Iterable<string>): Set<string> {
  const ids = typeof keyIds === "string" ? new Set([keyIds]) : new Set(keyIds);
  if (ids.size === 0)
    throw new RangeError("give at least one key id the stream may have been sealed under");
  return ids;
}

/** Reads and parses a stream's header (at most 2,125 bytes). */
export async function readHeader(reader: ByteReader): Promise<fmt.StreamHeader> {
  try {
    const fixed = await reader.read(fmt.FIXED_HEADER_LEN);
    const total = fmt.headerLength(fixed);
    const rest = await reader.read(total - fixed.length);
    const raw = Buffer.concat([fixed, rest]);
    if (raw.length !== total) throw new fmt.StreamFormatError();
    return fmt.parseHeader(raw);
  } catch (e) {
    if (e instanceof fmt.StreamFormatError) {
      throw new MalformedStream(
        "not a tresor stream envelope (or of a version this SDK cannot read)",
      );
    }
    throw e;
  }
}

/** Refuses, before tresor is asked, a stream under an unexpected key, and v1 unless legacy is accepted. */
export function checkHeader(header: fmt.StreamHeader, keyIds: Set<string>, legacy: boolean): void {
  if (!keyIds.has(header.keyId)) throw new UnexpectedKey(header.keyId);
  if (header.version === fmt.VERSION_1 && !legacy) {
    throw new LegacyStream(
      "a version 1 stream: its data key is not proven to come from GenerateDataKey; open it with a client " +
        "accepting legacy streams only if you trust who sealed it, then re-seal it",
    );
  }
}

/** What a refused unwrap means: INVALID_ARGUMENT is an unauthentic stream; others as they are. */
export function unwrapRefused(error: TresorError): TresorError {
  return error instanceof InvalidArgument ? unauthentic() : error;
}

/** An unwrapped data key; anything but 32 bytes means another ciphertext took the wrapped key's place. */
export function dataKeyBytes(plaintext: Buffer): Buffer {
  if (plaintext.length !== fmt.DATA_KEY_LEN)
    throw new InvalidCiphertext("the unwrapped data key is not 32 bytes");
  return plaintext;
}

function unauthentic(): UnauthenticStream {
  return new UnauthenticStream(
    "the stream does not authenticate under this context (tampered with, truncated, or the wrong context); " +
      "discard any output already written",
  );
}

/** The sealer of a new stream. */
export function newSealer(
  dataKey: Uint8Array,
  keyId: string,
  wrappedKey: Uint8Array,
  context: Context | undefined,
  options: fmt.SealerOptions,
): fmt.StreamSealer {
  try {
    return new fmt.StreamSealer(dataKey, keyId, wrappedKey, context, options);
  } catch (e) {
    if (e instanceof fmt.StreamTooLargeError) {
      throw new StreamTooLarge("a stream's key id and wrapped key are at most 1024 bytes");
    }
    throw e;
  }
}

/** Seals everything `source` yields: the header, then each sealed chunk. Fills `summary`. */
export async function* sealChunks(
  sealer: fmt.StreamSealer,
  source: ByteSource,
  summary: StreamSummary,
): AsyncGenerator<Buffer> {
  const reader = new ByteReader(source);
  const unit = sealer.chunkSize;
  yield sealer.header;
  summary.bytesOut += sealer.header.length;
  for (;;) {
    const { chunk, last } = await reader.chunk(unit);
    let body: Buffer;
    let tag: Buffer;
    try {
      [body, tag] = sealer.sealParts(chunk, last);
    } catch (e) {
      if (e instanceof fmt.StreamTooLargeError)
        throw new StreamTooLarge("a stream holds at most 2^32 chunks");
      throw e;
    }
    summary.bytesIn += chunk.length;
    summary.bytesOut += body.length + tag.length;
    summary.chunks += 1;
    if (body.length > 0) yield body;
    yield tag;
    if (last) return;
  }
}

/** The opener of a parsed header, once its commitment checked out. */
export function newOpener(
  dataKey: Uint8Array,
  header: fmt.StreamHeader,
  context: Context | undefined,
): fmt.StreamOpener {
  try {
    return new fmt.StreamOpener(dataKey, header, context);
  } catch (e) {
    if (e instanceof fmt.StreamAuthError) throw unauthentic();
    throw e;
  }
}

/** Opens the chunks after the header, yielding each once it authenticated. Fills `summary`. */
export async function* openChunks(
  opener: fmt.StreamOpener,
  reader: ByteReader,
  summary: StreamSummary,
): AsyncGenerator<Buffer> {
  const unit = opener.sealedChunkSize;
  for (;;) {
    const { chunk: sealed, last } = await reader.chunk(unit);
    let plaintext: Buffer;
    try {
      plaintext = opener.open(sealed, last);
    } catch (e) {
      if (e instanceof fmt.StreamAuthError) throw unauthentic();
      throw e;
    }
    summary.bytesIn += sealed.length;
    summary.bytesOut += plaintext.length;
    summary.chunks += 1;
    if (plaintext.length > 0) yield plaintext;
    if (last) return;
  }
}

/** Seals a whole payload with a known data key (no server): the offline half of sealBytes. */
export async function sealWithKey(
  dataKey: Uint8Array,
  keyId: string,
  wrappedKey: Uint8Array,
  context: Context | undefined,
  plaintext: Uint8Array,
  options: fmt.SealerOptions = {},
): Promise<Buffer> {
  const sealer = newSealer(dataKey, keyId, wrappedKey, context, options);
  const summary = { bytesIn: 0, bytesOut: 0, chunks: 0, keyVersion: 0 };
  const parts: Buffer[] = [];
  for await (const part of sealChunks(sealer, [plaintext], summary)) parts.push(part);
  return Buffer.concat(parts);
}

/** Opens a whole stream with a known data key (no server); nothing returned unless all authenticated. */
export async function openWithKey(
  dataKey: Uint8Array,
  stream: Uint8Array,
  context: Context | undefined,
): Promise<{ header: fmt.StreamHeader; plaintext: Buffer }> {
  const reader = new ByteReader([stream]);
  const header = await readHeader(reader);
  const opener = newOpener(dataKey, header, context);
  const summary = { bytesIn: header.raw.length, bytesOut: 0, chunks: 0, keyVersion: 0 };
  const parts: Buffer[] = [];
  for await (const part of openChunks(opener, reader, summary)) parts.push(part);
  return { header, plaintext: Buffer.concat(parts) };
}
