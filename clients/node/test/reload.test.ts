/**
 * Certificate files that change on disk are used for new calls, as the Rust
 * and Python SDKs do: renewed in place (written then renamed), the new
 * identity is presented; a half-written set is refused with a warning and
 * the last good set stays in use. Against a real tresor server.
 */

import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client, PermissionDenied, RetryPolicy } from "../src/index.js";
import { RELOAD_WARNING } from "../src/tls-material.js";
import { BILLING, TresorServer, tresorBin } from "./server.js";

const { bin, reason } = tresorBin();

describe("renewed certificate files", { skip: reason ?? false }, () => {
  let server: TresorServer;
  let dir: string;
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => {
    if (w.code === RELOAD_WARNING) warnings.push(w.message);
  };

  before(async () => {
    server = await TresorServer.start(bin as string);
    dir = mkdtempSync(join(tmpdir(), "tresor-node-reload-"));
    process.on("warning", onWarning);
  });

  after(async () => {
    process.off("warning", onWarning);
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  });

  /** Installs `name`'s certificate and key as a renewal would: written aside, then renamed. */
  const install = (name: string) => {
    const source = server.cert(name);
    for (const [from, to] of [
      [source.cert, join(dir, "cert.pem")],
      [source.key, join(dir, "key.pem")],
    ] as const) {
      copyFileSync(from, `${to}.new`);
      renameSync(`${to}.new`, to);
    }
  };

  /** A client whose certificate and key are the files `install` writes, checked on every call. */
  const followingFiles = () =>
    new Client({
      addr: server.addr,
      ca: server.ca,
      cert: join(dir, "cert.pem"),
      key: join(dir, "key.pem"),
      reloadIntervalMs: 0,
      retryPolicy: RetryPolicy.none(),
    });

  test("new calls present the renewed certificate; a set that does not load is not used", async () => {
    const admin = server.client("admin");
    const key = "node/reload";
    await admin.createKey(key, BILLING);
    admin.close();

    install("billing");
    const client = followingFiles();
    try {
      assert.equal((await client.encrypt(key, Buffer.from("as billing"))).keyVersion, 1);

      install("shipping"); // the "renewal" names another identity, so the switch shows
      await assert.rejects(client.encrypt(key, Buffer.from("as shipping")), PermissionDenied);

      writeFileSync(join(dir, "cert.pem"), "half-written");
      await assert.rejects(client.encrypt(key, Buffer.from("still shipping")), PermissionDenied);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0] as string, /do not load, keeping the last set/);
      assert.ok(!warnings[0]?.includes("PRIVATE KEY"), "the warning shows no key material");

      // The certificate of one identity with the key of another: refused too.
      copyFileSync(server.cert("billing").cert, join(dir, "cert.pem"));
      await assert.rejects(client.encrypt(key, Buffer.from("mismatched")), PermissionDenied);
      assert.equal(warnings.length, 2);

      install("billing");
      assert.equal((await client.encrypt(key, Buffer.from("billing again"))).keyVersion, 1);
    } finally {
      client.close();
    }
  });

  test("calls in flight finish on the old channel while new calls use the new one", async () => {
    install("billing");
    const client = followingFiles();
    try {
      const key = "node/reload";
      await client.encrypt(key, Buffer.from("warm"));
      const first = Array.from({ length: 20 }, () => client.encrypt(key, Buffer.alloc(4096)));
      install("shipping");
      // Its refusal is awaited from the start: it may come before the
      // calls in flight finish.
      const second = assert.rejects(
        client.encrypt(key, Buffer.from("as shipping")),
        PermissionDenied,
      );
      for (const r of await Promise.all(first)) assert.equal(r.keyId, key);
      await second;
    } finally {
      client.close();
    }
  });

  test("PEM given as bytes is fixed", async () => {
    const files = server.cert("billing");
    const { readFileSync } = await import("node:fs");
    const client = new Client({
      addr: server.addr,
      ca: readFileSync(server.ca),
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      reloadIntervalMs: 0,
    });
    try {
      assert.equal((await client.encrypt("node/reload", Buffer.from("x"))).keyVersion, 1);
    } finally {
      client.close();
    }
  });
});
