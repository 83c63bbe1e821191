/** fast-check properties of the envelope: round trips for any payload, chunk size and context; any flipped bit fails. */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { canonicalContext } from "../src/context.js";
import { openWithKey, sealWithKey } from "../src/envelope.js";
import { MalformedStream, UnauthenticStream } from "../src/errors.js";

const dataKey = fc.uint8Array({ minLength: 32, maxLength: 32 });
const context = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), {
  maxKeys: 4,
});
const chunkSize = fc.constantFrom(1024, 2048, 4096);
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc
    .integer({ min: 0, max: 3 })
    .chain((n) => fc.constantFrom(n * 1024 - 1, n * 1024, n * 1024 + 1))
    .map((n) => randomBytes(Math.max(0, n))),
  fc.uint8Array({ maxLength: 9000 }),
);
const wrapped = fc.uint8Array({ minLength: 0, maxLength: 120 });
const keyId = fc.string({ minLength: 1, maxLength: 20 });

test("any payload round trips under its context", async () => {
  await fc.assert(
    fc.asyncProperty(
      dataKey,
      keyId,
      wrapped,
      context,
      payload,
      chunkSize,
      async (k, id, w, ctx, p, c) => {
        const sealed = await sealWithKey(k, id, w, ctx, p, { chunkSize: c });
        const chunks = Math.max(1, Math.ceil(p.length / c));
        assert.equal(sealed.length, 77 + Buffer.byteLength(id) + w.length + p.length + 16 * chunks);
        const { plaintext, header } = await openWithKey(k, sealed, { ...ctx });
        assert.deepEqual(plaintext, Buffer.from(p));
        assert.equal(header.keyId, id);
      },
    ),
    { numRuns: 150 },
  );
});

test("any flipped bit, truncation or other context fails", async () => {
  await fc.assert(
    fc.asyncProperty(
      dataKey,
      context,
      payload,
      chunkSize,
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      async (k, ctx, p, c, where, bit) => {
        const sealed = await sealWithKey(k, "orders", Buffer.alloc(120, 7), ctx, p, {
          chunkSize: c,
        });
        const bad = Buffer.from(sealed);
        const at = where % bad.length;
        bad[at] = (bad[at] as number) ^ (1 << bit);
        const refused = (e: unknown) =>
          e instanceof UnauthenticStream || e instanceof MalformedStream;
        await assert.rejects(openWithKey(k, bad, ctx), refused);
        await assert.rejects(
          openWithKey(k, sealed.subarray(0, sealed.length - 1 - (where % 16)), ctx),
          refused,
        );
        const other = { ...ctx, "\u0000other": "x" };
        await assert.rejects(openWithKey(k, sealed, other), refused);
      },
    ),
    { numRuns: 150 },
  );
});

test("the canonical context ignores order and is injective", () => {
  fc.assert(
    fc.property(context, context, (a, b) => {
      const reversed = Object.fromEntries(Object.entries(a).reverse());
      assert.deepEqual(canonicalContext(reversed), canonicalContext(a));
      const same =
        JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
      assert.equal(canonicalContext(a).equals(canonicalContext(b)), same);
    }),
  );
});
