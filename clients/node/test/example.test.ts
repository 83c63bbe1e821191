/** The example in examples/ runs against a real server. */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { BILLING, PACKAGE, TresorServer, tresorBin } from "./server.js";

const { bin, reason } = tresorBin();

test("examples/seal-file.ts seals and opens a file", { skip: reason ?? false }, async () => {
  const server = await TresorServer.start(bin as string);
  const admin = server.client("admin");
  const dir = mkdtempSync(join(tmpdir(), "tresor-node-example-"));
  try {
    await admin.createKey("node/example", BILLING);
    const file = join(dir, "export.csv");
    const payload = randomBytes(300_000);
    writeFileSync(file, payload);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", join(PACKAGE, "examples/seal-file.ts"), "node/example", file],
      { env: { ...process.env, ...server.env("billing") }, cwd: PACKAGE },
    );
    assert.match(stdout, /opened into/);
    assert.deepEqual(readFileSync(`${file}.opened`), payload);
  } finally {
    admin.close();
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});
