/** The proto shipped in the package is the server's, byte for byte, and the method table covers it. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ADMIN_METHODS, CRYPTO_METHODS } from "../src/methods.js";
import { methodNames, PROTO_PATH } from "../src/proto.js";
import { PACKAGE, REPO } from "./server.js";

test("the bundled proto equals crates/tresor-proto's", () => {
  const upstream = readFileSync(join(REPO, "crates/tresor-proto/proto/tresor/v1/tresor.proto"));
  const copy = readFileSync(join(PACKAGE, "proto/tresor/v1/tresor.proto"));
  assert.ok(
    upstream.equals(copy),
    "clients/node/proto/tresor/v1/tresor.proto differs: copy crates/tresor-proto/proto/tresor/v1/tresor.proto over it",
  );
  assert.equal(PROTO_PATH, join(PACKAGE, "proto/tresor/v1/tresor.proto"));
});

test("the method table names exactly the proto's methods", () => {
  assert.deepEqual(methodNames("Crypto").sort(), Object.keys(CRYPTO_METHODS).sort());
  assert.deepEqual(methodNames("Admin").sort(), Object.keys(ADMIN_METHODS).sort());
});

test("every RPC has a client method", async () => {
  const { Client } = await import("../src/index.js");
  const renamed: Record<string, string> = { GetStatus: "status" };
  const missing = [...methodNames("Crypto"), ...methodNames("Admin")].filter((rpc) => {
    const name = renamed[rpc] ?? rpc[0]?.toLowerCase() + rpc.slice(1);
    return typeof (Client.prototype as unknown as Record<string, unknown>)[name] !== "function";
  });
  assert.deepEqual(missing, [], `RPCs without a Client method: ${missing.join(", ")}`);
});
