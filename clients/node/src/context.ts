/**
 * Encryption contexts and their canonical encoding (docs/FORMAT.md section 3).
 *
 * The encoding is the server's, byte for byte: the pair count, then each pair
 * in ascending byte-wise order of the key's UTF-8 bytes, every field prefixed
 * with its length as a u32be. The stream envelope binds it (section 10.2) and
 * the data-key cache keys on it, so equal contexts in any order are one.
 */

/** A context as callers give it: string keys to string values. */
export type Context = Readonly<Record<string, string>> | ReadonlyMap<string, string>;

const U32_MAX = 0xffffffff;

/** The pairs of `context` (none for undefined), checking their types. */
export function contextEntries(context: Context | undefined | null): [string, string][] {
  if (context == null) return [];
  const entries = context instanceof Map ? [...context.entries()] : Object.entries(context);
  for (const [key, value] of entries) {
    if (typeof key !== "string" || typeof value !== "string") {
      throw new TypeError("an encryption context maps string keys to string values");
    }
  }
  return entries as [string, string][];
}

/** A plain object copy of `context`, as the gRPC request maps take it. */
export function contextObject(context: Context | undefined | null): Record<string, string> {
  return Object.fromEntries(contextEntries(context));
}

function u32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}

/**
 * The canonical encoding of `context` (FORMAT.md section 3). Throws RangeError
 * for a pair count, key or value that does not fit in 32 bits.
 */
export function canonicalContext(context: Context | undefined | null): Buffer {
  const pairs = contextEntries(context).map(
    ([k, v]) => [Buffer.from(k, "utf8"), Buffer.from(v, "utf8")] as const,
  );
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  if (pairs.length > U32_MAX)
    throw new RangeError("an encryption context holds at most 2^32 - 1 pairs");
  const parts: Buffer[] = [u32(pairs.length)];
  for (const [key, value] of pairs) {
    if (key.length > U32_MAX || value.length > U32_MAX) {
      throw new RangeError("a context key or value is at most 2^32 - 1 bytes");
    }
    parts.push(u32(key.length), key, u32(value.length), value);
  }
  return Buffer.concat(parts);
}
