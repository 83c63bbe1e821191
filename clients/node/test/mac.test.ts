/**
 * The blind-index calls (Mac, VerifyMac, MacAllVersions, MacBatch) against a
 * real tresor server, and their tokens against the Rust SDK's (the `tresor
 * mac` CLI): a token is deterministic, so both must answer the same bytes.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import {
  type Client,
  InvalidArgument,
  NotFound,
  PermissionDenied,
  RetryPolicy,
  WrongKeyPurpose,
} from "../src/index.js";
import { BILLING, TresorServer, tresorBin } from "./server.js";

const CTX = { table: "users" };
const { bin, reason } = tresorBin();

describe("MAC calls against a real server", { skip: reason ?? false }, () => {
  let server: TresorServer;
  let admin: Client;
  let billing: Client;
  let shipping: Client;
  let ids = 0;

  const newKey = async (
    purpose: "KEY_PURPOSE_MAC" | "KEY_PURPOSE_ENCRYPT_DECRYPT" = "KEY_PURPOSE_MAC",
  ) => {
    const keyId = `node/mac-${ids++}`;
    await admin.createKey(keyId, BILLING, { purpose });
    return keyId;
  };

  before(async () => {
    server = await TresorServer.start(bin as string);
    const noRetry = { retryPolicy: RetryPolicy.none() };
    admin = server.client("admin", noRetry);
    billing = server.client("billing", noRetry);
    shipping = server.client("shipping", noRetry);
  });

  after(async () => {
    for (const c of [admin, billing, shipping]) c?.close();
    await server?.stop();
  });

  test("mac and verifyMac agree, and the token is the Rust SDK's", async () => {
    const key = await newKey();
    const message = Buffer.from("alice@example.com");
    const token = await billing.mac(key, message, { context: CTX });
    assert.equal(token.keyId, key);
    assert.equal(token.keyVersion, 1);
    assert.equal(token.mac.length, 8 + 32, "an 8-byte header and 32 HMAC bytes");
    assert.deepEqual((await billing.mac(key, message, { context: CTX })).mac, token.mac);

    const rust = JSON.parse(
      execFileSync(
        server.bin,
        ["--output", "json", "mac", key, "--context", "table=users", "--in", "-"],
        { input: message, env: { ...process.env, ...server.env("billing") }, encoding: "utf8" },
      ),
    );
    assert.equal(rust.mac, token.mac.toString("base64"));

    const valid = await billing.verifyMac(key, message, token.mac, { context: CTX });
    assert.deepEqual(valid, { valid: true, keyVersion: 1, keyId: key });
    for (const [what, args] of [
      ["another message", [Buffer.from("bob@example.com"), token.mac, CTX]],
      ["another context", [message, token.mac, { table: "orders" }]],
      [
        "a flipped bit",
        [message, Buffer.from(token.mac.map((b, i) => (i === 20 ? b ^ 1 : b))), CTX],
      ],
    ] as const) {
      const r = await billing.verifyMac(key, args[0], args[1], { context: args[2] });
      assert.equal(r.valid, false, what);
      assert.equal(r.keyVersion, 0, what);
    }
  });

  test("truncated tokens keep the asked bytes and verify only at that length", async () => {
    const key = await newKey();
    const message = Buffer.from("4111 1111 1111 1111");
    const short = await billing.mac(key, message, { truncateBytes: 8 });
    assert.equal(short.mac.length, 8 + 8);
    assert.equal(
      (await billing.verifyMac(key, message, short.mac, { truncateBytes: 8 })).valid,
      true,
    );
    assert.equal((await billing.verifyMac(key, message, short.mac)).valid, false);
    await assert.rejects(billing.mac(key, message, { truncateBytes: 3 }), InvalidArgument);
  });

  test("macAllVersions answers every live version, primary first", async () => {
    const key = await newKey();
    const message = Buffer.from("alice@example.com");
    const v1 = await billing.mac(key, message, { context: CTX });
    await admin.rotateKey(key);
    const all = await billing.macAllVersions(key, message, { context: CTX });
    assert.deepEqual(
      all.map((t) => t.keyVersion),
      [2, 1],
    );
    assert.deepEqual(all[1]?.mac, v1.mac);
    const old = await billing.verifyMac(key, message, v1.mac, { context: CTX });
    assert.deepEqual(old, { valid: true, keyVersion: 1, keyId: key });
  });

  test("macBatch answers each item, refusals in place", async () => {
    const key = await newKey();
    const encryptKey = await newKey("KEY_PURPOSE_ENCRYPT_DECRYPT");
    const results = await billing.macBatch([
      { keyId: key, message: Buffer.from("a"), context: CTX },
      { keyId: encryptKey, message: Buffer.from("b") },
      { keyId: "node/no-such-key", message: Buffer.from("c") },
      { keyId: key, message: Buffer.from("d"), truncateBytes: 16 },
    ]);
    assert.equal(results.length, 4);
    const [first, wrongPurpose, missing, short] = results;
    assert.ok(!(first instanceof Error) && first?.keyVersion === 1);
    assert.deepEqual(
      (first as { mac: Buffer }).mac,
      (await billing.mac(key, Buffer.from("a"), { context: CTX })).mac,
    );
    assert.ok(wrongPurpose instanceof WrongKeyPurpose, String(wrongPurpose));
    assert.ok(missing instanceof PermissionDenied || missing instanceof NotFound, String(missing));
    assert.equal((short as { mac: Buffer }).mac.length, 8 + 16);
    assert.deepEqual(await billing.macBatch([]), []);
  });

  test("purposes and owners are enforced", async () => {
    const key = await newKey();
    const encryptKey = await newKey("KEY_PURPOSE_ENCRYPT_DECRYPT");
    await assert.rejects(billing.mac(encryptKey, Buffer.from("x")), WrongKeyPurpose);
    await assert.rejects(billing.encrypt(key, Buffer.from("x")), WrongKeyPurpose);
    await assert.rejects(shipping.mac(key, Buffer.from("x")), PermissionDenied);
    await assert.rejects(
      shipping.verifyMac(key, Buffer.from("x"), Buffer.alloc(40)),
      PermissionDenied,
    );
    await assert.rejects(shipping.macAllVersions(key, Buffer.from("x")), PermissionDenied);
  });
});
