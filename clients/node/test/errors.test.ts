/**
 * Every error class a real server can be brought to answer, each with its
 * reason and request id (integration.test.ts has PermissionDenied,
 * InvalidCiphertext, KeyDisabled, Sealed, Cancelled and the connection
 * failures; mac.test.ts WrongKeyPurpose). Failures a healthy server cannot
 * be made to give here (KEY_RECORD_TAMPERED, KEYSTORE_UNAVAILABLE,
 * AUDIT_UNAVAILABLE) are mapped by units.test.ts.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  AlreadyExists,
  Client,
  ConfigError,
  FailedPrecondition,
  InvalidArgument,
  InvalidCiphertext,
  KeyPendingDeletion,
  KeyVersionBelowMinimum,
  KeyVersionDestroyed,
  NotFound,
  RateLimited,
  ResourceExhausted,
  RetryPolicy,
  type TresorError,
  WrappedDataKey,
} from "../src/index.js";
import { BILLING, LIMITED, TresorServer, tresorBin } from "./server.js";

const CTX = { tenant: "42" };
const { bin, reason } = tresorBin();

/** The error `promise` rejects with, checked to be a `cls` with a request id. */
async function refusal<T extends TresorError>(
  promise: Promise<unknown>,
  cls: new (...args: never[]) => T,
): Promise<T> {
  const error = await promise.then(
    () => assert.fail(`expected ${cls.name}, the call succeeded`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof cls, `expected ${cls.name}, got ${String(error)}`);
  assert.ok(error.requestId, `${cls.name} carries the request id`);
  return error;
}

describe("error classes against a real server", { skip: reason ?? false }, () => {
  let server: TresorServer;
  let admin: Client;
  let billing: Client;

  before(async () => {
    server = await TresorServer.start(bin as string, "--rate-limit", `${LIMITED}=2/s`);
    const noRetry = { retryPolicy: RetryPolicy.none() };
    admin = server.client("admin", noRetry);
    billing = server.client("billing", noRetry);
  });

  after(async () => {
    for (const c of [admin, billing]) c?.close();
    await server?.stop();
  });

  test("request errors: AlreadyExists, InvalidArgument, NotFound, WrappedDataKey", async () => {
    const key = "node/errors-requests";
    await admin.createKey(key, BILLING);
    await refusal(admin.createKey(key, BILLING), AlreadyExists);
    await refusal(admin.createKey("/not a key id", BILLING), InvalidArgument);
    await refusal(admin.getKey("node/does-not-exist"), NotFound);
    const dataKey = await billing.generateDataKey(key, { context: CTX });
    const wrapped = await refusal(
      billing.decrypt(key, dataKey.wrappedKey, { context: CTX }),
      WrappedDataKey,
    );
    assert.equal(wrapped.reason, "WRAPPED_DATA_KEY");
    const sealed = await billing.encrypt(key, Buffer.from("x"), { context: CTX });
    await refusal(
      billing.decryptDataKey(key, sealed.ciphertext, { context: CTX }),
      InvalidCiphertext,
    );
  });

  test("key life cycle: below the minimum version, destroyed, pending deletion", async () => {
    const key = "node/errors-life-cycle";
    await admin.createKey(key, BILLING);
    const sealed = await billing.encrypt(key, Buffer.from("v1"), { context: CTX });
    await admin.rotateKey(key);
    await admin.setMinDecryptionVersion(key, 2);
    const below = await refusal(
      billing.decrypt(key, sealed.ciphertext, { context: CTX }),
      KeyVersionBelowMinimum,
    );
    assert.equal(below.reason, "KEY_VERSION_BELOW_MINIMUM");
    assert.ok(below instanceof FailedPrecondition);

    await admin.destroyKeyVersion(key, 1);
    const destroyed = await refusal(
      billing.decrypt(key, sealed.ciphertext, { context: CTX }),
      KeyVersionDestroyed,
    );
    assert.equal(destroyed.reason, "KEY_VERSION_DESTROYED");

    await admin.scheduleKeyDeletion(key);
    const pending = await refusal(billing.encrypt(key, Buffer.from("x")), KeyPendingDeletion);
    assert.equal(pending.reason, "KEY_PENDING_DELETION");
    await admin.cancelKeyDeletion(key);
  });

  test("an identity over its rate limit gets RateLimited", async () => {
    const key = "node/errors-limited";
    await admin.createKey(key, LIMITED);
    const limited = server.client("limited", { retryPolicy: RetryPolicy.none() });
    try {
      const attempts = Array.from({ length: 30 }, () => limited.encrypt(key, Buffer.from("x")));
      const outcomes = await Promise.allSettled(attempts);
      const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
      assert.ok(refused.length > 0, "30 calls at once over a 2/s limit: some are refused");
      for (const e of refused) {
        assert.ok(e instanceof RateLimited, String(e));
        assert.ok(e instanceof ResourceExhausted);
        assert.equal(e.reason, "RATE_LIMITED");
        assert.ok(e.requestId);
      }
    } finally {
      limited.close();
    }
  });

  test("material that does not load is a ConfigError, before any call", () => {
    assert.throws(
      () => new Client({ addr: server.addr, ca: "/nonexistent/ca.pem" }),
      (e: unknown) => e instanceof ConfigError && e.message.includes("/nonexistent/ca.pem"),
    );
    const files = server.cert("billing");
    assert.throws(
      () => new Client({ addr: server.addr, ca: server.ca, cert: files.cert }),
      ConfigError,
    );
    assert.throws(
      () => new Client({ addr: server.addr, ca: server.ca, cert: files.key, key: files.cert }),
      ConfigError,
    );
    assert.throws(() => Client.fromEnv({}, {}), ConfigError);
    assert.throws(
      () => new Client({ addr: "http://localhost:1", ca: server.ca }),
      (e: unknown) => e instanceof ConfigError && e.message.includes("TLS only"),
    );
  });
});
