/**
 * Every data-plane RPC, the envelope, admin calls and the refusals the server
 * can be brought to give, against a real tresor server (test/server.ts).
 */

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import {
  Cancelled,
  type Client,
  ConnectError,
  ConnectHint,
  DecryptResult,
  InvalidCiphertext,
  KeyDisabled,
  LegacyStream,
  MalformedStream,
  PermissionDenied,
  RetryPolicy,
  Sealed,
  TresorError,
  UnauthenticStream,
  UnexpectedKey,
  WrappedDataKey,
} from "../src/index.js";
import { BILLING, SHIPPING, TresorServer, tresorBin } from "./server.js";

const CTX = { tenant: "42", table: "orders" };
const NO_RETRY = RetryPolicy.none();
const { bin, reason } = tresorBin();

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

describe("against a real server", { skip: reason ?? false }, () => {
  let server: TresorServer;
  let admin: Client;
  let billing: Client;
  let shipping: Client;
  let ids = 0;

  const newKey = async (prefix = "node/test", owner = BILLING) => {
    const keyId = `${prefix}-${ids++}`;
    await admin.createKey(keyId, owner, { description: "made by the Node SDK tests" });
    return keyId;
  };

  before(async () => {
    server = await TresorServer.start(bin as string);
    admin = server.client("admin");
    billing = server.client("billing");
    shipping = server.client("shipping");
  });

  after(async () => {
    for (const c of [admin, billing, shipping]) c?.close();
    await server?.stop();
  });

  test("data plane round trips", async () => {
    const key = await newKey();
    const sealed = await billing.encrypt(key, Buffer.from("card 4111"), { context: CTX });
    assert.equal(sealed.keyId, key);
    assert.equal(sealed.keyVersion, 1);
    const opened = await billing.decrypt(key, sealed.ciphertext, {
      context: { table: "orders", tenant: "42" },
    });
    assert.equal(opened.plaintext.toString(), "card 4111");
    assert.ok(!inspect(opened).includes("card 4111"));
    assert.ok(!JSON.stringify(opened).includes("card 4111"));

    const again = await billing.reEncrypt({
      keyId: key,
      ciphertext: sealed.ciphertext,
      context: CTX,
    });
    assert.notDeepEqual(again.ciphertext, sealed.ciphertext);
    assert.equal(
      (await billing.decrypt(key, again.ciphertext, { context: CTX })).plaintext.toString(),
      "card 4111",
    );

    const dk = await billing.generateDataKey(key, { context: CTX });
    assert.equal(dk.plaintextKey.length, 32);
    const hex = dk.plaintextKey.toString("hex");
    const b64 = dk.plaintextKey.toString("base64");
    for (const shown of [inspect(dk), JSON.stringify(dk), `${inspect({ dk })}`]) {
      assert.ok(!shown.includes(hex) && !shown.includes(b64), shown);
    }
    const unwrapped = await billing.decryptDataKey(key, dk.wrappedKey, { context: CTX });
    assert.deepEqual(unwrapped.plaintextKey, dk.plaintextKey);
    assert.ok(!inspect(unwrapped).includes(hex));
    assert.equal(
      (await billing.generateDataKey(key, { context: CTX, keyBytes: 16 })).plaintextKey.length,
      16,
    );
    const blind = await billing.generateDataKeyWithoutPlaintext(key, { context: CTX });
    assert.equal(
      (await billing.decryptDataKey(key, blind.wrappedKey, { context: CTX })).plaintextKey.length,
      32,
    );
    await assert.rejects(billing.decrypt(key, dk.wrappedKey, { context: CTX }), WrappedDataKey);
  });

  test("key moves between keys", async () => {
    const source = await newKey();
    const destination = await newKey();
    const sealed = await billing.encrypt(source, Buffer.from("moving"), { context: CTX });
    const moved = await billing.reEncrypt({
      keyId: source,
      ciphertext: sealed.ciphertext,
      context: CTX,
      destinationKeyId: destination,
      destinationContext: { new: "ctx" },
    });
    assert.equal(moved.keyId, destination);
    const back = await billing.decrypt(destination, moved.ciphertext, { context: { new: "ctx" } });
    assert.equal(back.plaintext.toString(), "moving");
  });

  test("batches answer each item", async () => {
    const key = await newKey();
    const results = await billing.encryptBatch([
      { keyId: key, plaintext: Buffer.from("one"), context: CTX },
      { keyId: "node/missing", plaintext: Buffer.from("two") },
      { keyId: key, plaintext: Buffer.from("3") },
    ]);
    assert.ok(results[1] instanceof PermissionDenied);
    assert.ok((results[1] as TresorError).requestId);
    const first = results[0];
    assert.ok(first && !(first instanceof TresorError));
    const opened = await billing.decryptBatch([
      { keyId: key, ciphertext: first.ciphertext, context: CTX },
      { keyId: key, ciphertext: first.ciphertext, context: { tenant: "43" } },
    ]);
    assert.ok(opened[0] instanceof DecryptResult);
    assert.equal(opened[0].plaintext.toString(), "one");
    assert.ok(opened[1] instanceof InvalidCiphertext);
    const other = await newKey();
    const third = results[2];
    assert.ok(third && !(third instanceof TresorError));
    const moved = await billing.reEncryptBatch([
      { keyId: key, ciphertext: third.ciphertext },
      {
        keyId: key,
        ciphertext: third.ciphertext,
        destinationKeyId: other,
        destinationContext: { to: "other" },
      },
    ]);
    assert.deepEqual(
      moved.map((m) => (m instanceof TresorError ? m : m.keyId)),
      [key, other],
    );
    assert.deepEqual(await billing.encryptBatch([]), []);
  });

  test("refusals are typed, with the request id", async () => {
    const key = await newKey();
    const sealed = await billing.encrypt(key, Buffer.from("x"), { context: CTX });
    // Another identity without a grant.
    const denied = await shipping.encrypt(key, Buffer.from("x")).catch((e: unknown) => e);
    assert.ok(denied instanceof PermissionDenied, String(denied));
    assert.ok(denied instanceof TresorError);
    assert.equal(denied.code, 7);
    assert.ok(denied.requestId, "a request id");
    // The wrong context.
    const wrong = await billing
      .decrypt(key, sealed.ciphertext, { context: { tenant: "43" } })
      .catch((e: unknown) => e);
    assert.ok(wrong instanceof InvalidCiphertext, String(wrong));
    assert.equal(wrong.reason, "INVALID_CIPHERTEXT");
    assert.ok(wrong.requestId);
    // A disabled key.
    await admin.disableKey(key);
    const disabled = await billing.encrypt(key, Buffer.from("x")).catch((e: unknown) => e);
    assert.ok(disabled instanceof KeyDisabled, String(disabled));
    assert.equal(disabled.reason, "KEY_DISABLED");
    await admin.enableKey(key);
    await billing.encrypt(key, Buffer.from("x"));
  });

  test("grants let another identity in", async () => {
    const key = await newKey();
    await admin.createGrant(key, SHIPPING, { operations: ["OPERATION_ENCRYPT"] });
    const info = await admin.getKey(key);
    assert.equal(info.grants[0]?.grantee, SHIPPING);
    await shipping.encrypt(key, Buffer.from("ok"));
    await admin.revokeGrant(key, SHIPPING, { operations: ["OPERATION_ENCRYPT"] });
    await assert.rejects(shipping.encrypt(key, Buffer.from("no")), PermissionDenied);
  });

  test("admin calls", async () => {
    const key = await newKey("node/admin");
    const rotated = await admin.rotateKey(key);
    assert.equal(rotated.primaryVersion, 2);
    assert.equal(rotated.state, "KEY_STATE_ENABLED");
    assert.equal(rotated.purpose, "KEY_PURPOSE_ENCRYPT_DECRYPT");
    const labelled = await admin.setKeyLabels(key, { team: "node" });
    assert.deepEqual(labelled.labels, { team: "node" });
    const described = await admin.updateKeyDescription(key, "new words");
    assert.equal(described.description, "new words");
    const listed = await admin.listKeys({ prefix: "node/admin" });
    assert.ok(listed.some((k) => k.keyId === key));
    await admin.createAlias("alias/node", key);
    assert.ok(
      (await admin.listAliases("alias/")).some((a) => a.alias === "alias/node" && a.keyId === key),
    );
    await admin.deleteAlias("alias/node");
    const status = await admin.status();
    assert.equal(status.sealed, false);
    assert.ok(status.keyCount >= 1);
    const report = await admin.verifyAuditLog();
    assert.equal(report.intact, true);
    const pending = await admin.scheduleKeyDeletion(key, 7);
    assert.equal(pending.state, "KEY_STATE_PENDING_DELETION");
    assert.equal((await admin.cancelKeyDeletion(key)).state, "KEY_STATE_DISABLED");
    await assert.rejects(shipping.rotateKey(key), PermissionDenied);
  });

  test("streams round trip and refuse what they must", async () => {
    const key = await newKey();
    const payload = randomBytes(200_000);
    const sink = new PassThrough();
    const got = collect(sink);
    const sealedSummary = await billing.sealStream(
      key,
      Readable.from([payload.subarray(0, 7), payload.subarray(7)]),
      sink,
      {
        context: CTX,
        chunkSize: 1024 * 64,
      },
    );
    const sealed = await got;
    assert.equal(sealedSummary.chunks, 4);
    assert.equal(sealedSummary.bytesIn, payload.length);
    assert.equal(sealedSummary.bytesOut, sealed.length);
    const out = new PassThrough();
    const opened = collect(out);
    const summary = await billing.openStream(key, [sealed], out, { context: CTX });
    assert.deepEqual(await opened, payload);
    assert.equal(summary.bytesOut, payload.length);

    assert.deepEqual(await billing.openBytes([key, "other"], sealed, { context: CTX }), payload);
    const small = await billing.sealBytes(key, Buffer.from("small"), { context: CTX });
    assert.equal((await billing.openBytes(key, small, { context: CTX })).toString(), "small");

    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    await assert.rejects(billing.openBytes(key, tampered, { context: CTX }), UnauthenticStream);
    await assert.rejects(
      billing.openBytes(key, sealed, { context: { tenant: "43" } }),
      UnauthenticStream,
    );
    await assert.rejects(
      billing.openBytes(key, sealed.subarray(0, sealed.length - 20), { context: CTX }),
      UnauthenticStream,
    );
    await assert.rejects(
      billing.openBytes(key, sealed.subarray(0, 30), { context: CTX }),
      MalformedStream,
    );
    await assert.rejects(billing.openBytes("another/key", sealed, { context: CTX }), UnexpectedKey);
    await assert.rejects(shipping.openBytes(key, sealed, { context: CTX }), PermissionDenied);
  });

  test("version 1 streams open only on a client accepting legacy streams", async () => {
    const key = await newKey();
    // A v1 stream: the data key is an Encrypt ciphertext of a data key the sealer chose.
    const dataKey = randomBytes(32);
    const wrapped = await billing.encrypt(key, dataKey, { context: CTX });
    const { sealWithKey } = await import("../src/envelope.js");
    const stream = await sealWithKey(dataKey, key, wrapped.ciphertext, CTX, Buffer.from("legacy"), {
      version: 1,
    });
    await assert.rejects(billing.openBytes(key, stream, { context: CTX }), LegacyStream);
    const legacy = billing.acceptingLegacyStreams();
    assert.equal((await legacy.openBytes(key, stream, { context: CTX })).toString(), "legacy");
  });

  test("the data-key cache reuses one data key per key id and context", async () => {
    const key = await newKey();
    const cached = server.client("billing", { dataKeyCache: { maxMessages: 2 } });
    try {
      const a = await cached.sealBytes(key, Buffer.from("a"), { context: CTX });
      const b = await cached.sealBytes(key, Buffer.from("b"), {
        context: { table: "orders", tenant: "42" },
      });
      const c = await cached.sealBytes(key, Buffer.from("c"), { context: CTX });
      const wrappedOf = (s: Buffer) =>
        s.subarray(45 + key.length, 45 + key.length + s.readUInt16BE(11));
      assert.deepEqual(wrappedOf(a), wrappedOf(b));
      assert.notDeepEqual(wrappedOf(a), wrappedOf(c));
      assert.notDeepEqual(a.subarray(13, 45), b.subarray(13, 45), "a fresh salt per message");
      assert.deepEqual(cached.dataKeyCache?.sizes(), [1, 0]);
      assert.equal((await cached.openBytes(key, a, { context: CTX })).toString(), "a");
      assert.equal((await cached.openBytes(key, b, { context: CTX })).toString(), "b");
      assert.deepEqual(cached.dataKeyCache?.sizes(), [1, 1]);
      assert.equal((await billing.openBytes(key, c, { context: CTX })).toString(), "c");
      assert.ok(!inspect(cached.dataKeyCache).includes("key:"));
    } finally {
      cached.close();
    }
  });

  test("deadlines and abort signals", async () => {
    const key = await newKey();
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      billing.encrypt(key, Buffer.from("x"), { signal: controller.signal }),
      Cancelled,
    );
    const slow = new AbortController();
    const pending = billing.encrypt(key, Buffer.alloc(1 << 20), { signal: slow.signal });
    slow.abort();
    await assert.rejects(pending, Cancelled);
    await billing.encrypt(key, Buffer.from("x"), { timeoutMs: 10_000 });
  });

  test("a sealed server refuses with Sealed, and retries wait it out", async () => {
    const key = await newKey();
    await admin.seal();
    try {
      const refused = await billing
        .withRetryPolicy(NO_RETRY)
        .encrypt(key, Buffer.from("x"))
        .catch((e: unknown) => e);
      assert.ok(refused instanceof Sealed, String(refused));
      assert.equal(refused.reason, "SEALED");
    } finally {
      await admin.unseal();
    }
    assert.equal((await admin.status()).sealed, false);
    await billing.encrypt(key, Buffer.from("x"));
  });

  test("connection failures carry a hint", async () => {
    const wrongCa = server.client("billing", {
      ca: server.cert("billing").cert,
      retryPolicy: NO_RETRY,
    });
    try {
      const e = await wrongCa
        .encrypt("node/x", Buffer.from("x"), { timeoutMs: 5000 })
        .catch((err: unknown) => err);
      assert.ok(e instanceof ConnectError, String(e));
      assert.equal(e.hint, ConnectHint.WrongCa, e.message);
    } finally {
      wrongCa.close();
    }
    const nobody = server.client("billing", { addr: "https://127.0.0.1:1", retryPolicy: NO_RETRY });
    try {
      const e = await nobody
        .encrypt("node/x", Buffer.from("x"), { timeoutMs: 5000 })
        .catch((err: unknown) => err);
      assert.ok(e instanceof ConnectError, String(e));
      assert.equal(e.hint, ConnectHint.ServerNotRunning, e.message);
    } finally {
      nobody.close();
    }
  });

  test("a 1 MiB stream's digest survives the round trip through files of the CLI", async () => {
    const key = await newKey();
    const payload = randomBytes(1 << 20);
    const sealed = await billing.sealBytes(key, payload, { context: CTX, chunkSize: 4096 });
    const opened = await billing.openBytes(key, sealed, { context: CTX });
    assert.equal(
      createHash("sha256").update(opened).digest("hex"),
      createHash("sha256").update(payload).digest("hex"),
    );
  });
});
