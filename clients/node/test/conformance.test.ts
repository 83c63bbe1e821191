/**
 * Live cross-language proof: clients/conformance/driver.py against the real
 * server, with the Rust CLI (`tresor envelope`), this package's envelope tool
 * (`node dist/envelope-tool.js`, so `npm run build` first) and, when a Python
 * with the tresor package is found ($TRESOR_PYTHON, else python3), the Python
 * SDK's: every sealer against every opener, sizes 0, 1, chunk-1, chunk,
 * chunk+1 and 5 MiB, tampered streams and other contexts refused.
 */

import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { Client } from "../src/index.js";
import { BILLING, PACKAGE, REPO, TresorServer, tresorBin } from "./server.js";

const run = promisify(execFile);
const DRIVER = join(REPO, "clients", "conformance", "driver.py");
const TOOL = join(PACKAGE, "dist", "envelope-tool.js");
const { bin, reason } = tresorBin();

function quote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** A Python that imports tresor, or undefined. */
function pythonWithTresor(): string | undefined {
  for (const python of [process.env.TRESOR_PYTHON, "python3"]) {
    if (!python) continue;
    const done = spawnSync(python, ["-c", "import tresor.envelope_tool"], { stdio: "ignore" });
    if (done.status === 0) return python;
  }
  return undefined;
}

describe("conformance driver", { skip: reason ?? false }, () => {
  let server: TresorServer;
  let admin: Client;

  before(async () => {
    if (!existsSync(TOOL)) throw new Error(`${TOOL} is missing: run \`npm run build\` first`);
    server = await TresorServer.start(bin as string);
    admin = server.client("admin");
  });

  after(async () => {
    admin?.close();
    await server?.stop();
  });

  test("every sealer against every opener", { timeout: 170_000 }, async () => {
    const key = "node/conformance";
    await admin.createKey(key, BILLING);
    const sdks: Record<string, string> = {
      rust: `${quote(bin as string)} envelope`,
      node: `${quote(process.execPath)} ${quote(TOOL)}`,
    };
    const python = pythonWithTresor();
    if (python) sdks.python = `${quote(python)} -m tresor.envelope_tool`;
    else if (process.env.CI) {
      assert.fail("no Python with the tresor package (set TRESOR_PYTHON); CI is set: not skipping");
    } else {
      console.log("# the Python SDK is not installed (set TRESOR_PYTHON): Rust and Node only");
    }
    const args = [DRIVER, "--key-id", key, "--context", "run=node-test"];
    for (const [name, command] of Object.entries(sdks)) args.push("--sdk", `${name}=${command}`);
    const done = await run("python3", args, {
      env: { ...process.env, ...server.env("billing"), TRESOR_LOG: "error" },
      maxBuffer: 16 << 20,
      timeout: 165_000,
    }).catch((e: { stdout?: string; stderr?: string }) => {
      assert.fail(`the driver failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    });
    const lines = done.stdout.trim().split("\n");
    const n = Object.keys(sdks).length;
    // Per size: n seals, and per (sealer, opener) one open and two refusals.
    const expected = 6 * (n + 3 * n * n);
    assert.equal(lines.at(-1), `${expected} passed, 0 failed`, done.stdout);
    for (const sealer of Object.keys(sdks)) {
      for (const opener of Object.keys(sdks)) {
        for (const size of [0, 1, 65535, 65536, 65537, 5 << 20]) {
          assert.ok(
            lines.includes(`ok   ${opener} opens ${sealer}'s ${size} bytes`),
            `${opener} opens ${sealer}'s ${size}`,
          );
        }
      }
    }
  });
});
