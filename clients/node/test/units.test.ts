/** Offline units: the canonical context, addresses, errors and the retry policy. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { Metadata, status } from "@grpc/grpc-js";
import {
  ConfigError,
  ConnectError,
  ConnectHint,
  canonicalContext,
  fromItemStatus,
  fromStatus,
  Idempotency,
  InvalidCiphertext,
  KeyDisabled,
  KNOWN_REASONS,
  optionsFromEnv,
  PermissionDenied,
  parseAddress,
  RateLimited,
  RetryPolicy,
  Sealed,
  TresorError,
  Unavailable,
} from "../src/index.js";

test("the canonical context is FORMAT.md section 3's", () => {
  assert.equal(
    canonicalContext({ b: "22", a: "1" }).toString("hex"),
    "00000002000000016100000001310000000162000000023232",
  );
  assert.equal(canonicalContext(undefined).toString("hex"), "00000000");
  assert.notDeepEqual(canonicalContext({ ab: "c" }), canonicalContext({ a: "bc" }));
  assert.deepEqual(
    canonicalContext(
      new Map([
        ["x", "1"],
        ["é", "2"],
      ]),
    ),
    canonicalContext({ é: "2", x: "1" }),
  );
  // Byte-wise order of UTF-8, not UTF-16 code units.
  const encoded = canonicalContext({ "\u{1F600}": "a", "\uFFFF": "b" }).toString("hex");
  assert.ok(encoded.indexOf("efbfbf") < encoded.indexOf("f09f9880"));
});

test("addresses as the CLI takes them", () => {
  assert.deepEqual(parseAddress("https://localhost:8443"), {
    target: "localhost:8443",
    host: "localhost",
  });
  assert.deepEqual(parseAddress("127.0.0.1:1"), { target: "127.0.0.1:1", host: "127.0.0.1" });
  assert.deepEqual(parseAddress("https://[::1]:8443/"), { target: "[::1]:8443", host: "::1" });
  for (const bad of ["http://x:1", "x", "x:0", "x:99999", "https://x:1/path", ""]) {
    assert.throws(() => parseAddress(bad), ConfigError, bad);
  }
  assert.throws(() => optionsFromEnv({}), ConfigError);
  assert.throws(() => optionsFromEnv({ TRESOR_ADDR: "x:1" }), ConfigError);
  assert.deepEqual(
    optionsFromEnv({ TRESOR_ADDR: "x:1", TRESOR_CA: "ca.pem", TRESOR_CERT: "c", TRESOR_KEY: "k" }),
    {
      addr: "x:1",
      ca: "ca.pem",
      cert: "c",
      key: "k",
    },
  );
});

function trailers(pairs: Record<string, string>): Metadata {
  const m = new Metadata();
  for (const [k, v] of Object.entries(pairs)) m.set(k, v);
  return m;
}

test("errors are typed from the reason, else the code", () => {
  const e = fromStatus(status.FAILED_PRECONDITION, "whatever words", {
    trailers: trailers({ "x-tresor-reason": "KEY_DISABLED", "x-request-id": "req-1" }),
  });
  assert.ok(e instanceof KeyDisabled && e instanceof TresorError);
  assert.equal(e.reason, "KEY_DISABLED");
  assert.equal(e.requestId, "req-1");
  assert.ok(String(e).includes("req-1"));
  assert.ok(fromStatus(status.PERMISSION_DENIED, "no") instanceof PermissionDenied);
  assert.ok(fromStatus(status.UNAVAILABLE, "service is sealed") instanceof Sealed);
  assert.ok(
    fromStatus(status.RESOURCE_EXHAUSTED, "x", {
      trailers: trailers({ "x-tresor-reason": "RATE_LIMITED" }),
    }) instanceof RateLimited,
  );
  // A reason newer than this SDK falls back to the code.
  const newer = fromStatus(status.PERMISSION_DENIED, "x", {
    trailers: trailers({ "x-tresor-reason": "SOMETHING_NEW" }),
  });
  assert.ok(newer instanceof PermissionDenied);
  assert.equal(newer.reason, "SOMETHING_NEW");
  const item = fromItemStatus(3, "invalid ciphertext", "req-2");
  assert.ok(item instanceof InvalidCiphertext);
  assert.equal(item.requestId, "req-2");
  const refused = fromStatus(
    status.UNAVAILABLE,
    "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1",
  );
  assert.ok(refused instanceof ConnectError);
  assert.equal(refused.hint, ConnectHint.ServerNotRunning);
  assert.equal(KNOWN_REASONS.length, 12);
});

async function attempts(policy: RetryPolicy, idempotency: Idempotency, failures: TresorError[]) {
  let calls = 0;
  const outcome = await policy
    .run(idempotency, async () => {
      calls++;
      const next = failures.shift();
      if (next) throw next;
      return "ok";
    })
    .catch((e: unknown) => e);
  return { calls, outcome };
}

const quick = (maxAttempts: number) =>
  new RetryPolicy({ maxAttempts, initialBackoffMs: 1, maxBackoffMs: 4 });
const refusedConnection = () =>
  new ConnectError("connection refused", "x", ConnectHint.ServerNotRunning);

test("safe calls retry transient failures until they pass", async () => {
  const r = await attempts(quick(4), Idempotency.Safe, [
    new Sealed("s"),
    new Unavailable("keystore unavailable"),
    refusedConnection(),
  ]);
  assert.deepEqual(r, { calls: 4, outcome: "ok" });
});

test("attempts are bounded", async () => {
  const r = await attempts(
    quick(3),
    Idempotency.Safe,
    Array.from({ length: 10 }, () => new Sealed("s")),
  );
  assert.equal(r.calls, 3);
  assert.ok(r.outcome instanceof Sealed);
  assert.equal((await attempts(RetryPolicy.none(), Idempotency.Safe, [new Sealed("s")])).calls, 1);
});

test("unsafe calls retry only when nothing was done", async () => {
  assert.deepEqual(
    await attempts(quick(4), Idempotency.Unsafe, [new Sealed("s"), refusedConnection()]),
    { calls: 3, outcome: "ok" },
  );
  const r = await attempts(quick(4), Idempotency.Unsafe, [
    new Unavailable("audit log unavailable"),
  ]);
  assert.equal(r.calls, 1);
  assert.ok(r.outcome instanceof Unavailable);
});

test("refusals are never retried", async () => {
  for (const error of [
    new PermissionDenied("no"),
    new KeyDisabled("d"),
    new InvalidCiphertext("i"),
    new RateLimited("slow"),
  ]) {
    assert.equal((await attempts(quick(4), Idempotency.Safe, [error])).calls, 1);
  }
  const wrongCa = new ConnectError(
    "unable to verify the first certificate",
    "x",
    ConnectHint.WrongCa,
  );
  assert.equal((await attempts(quick(4), Idempotency.Safe, [wrongCa])).calls, 1);
});

test("backoff caps double up to the maximum", () => {
  const policy = new RetryPolicy({ maxAttempts: 10, initialBackoffMs: 50, maxBackoffMs: 300 });
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => policy.cap(n)),
    [50, 100, 200, 300, 300],
  );
  for (let i = 0; i < 100; i++) {
    const w = policy.wait(2);
    assert.ok(w >= 0 && w <= 100);
  }
});
