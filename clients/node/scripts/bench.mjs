// Benchmarks of the Node SDK against a real tresor server (started here as
// the tests do, from $TRESOR_BIN or target/release/tresor), each figure
// measured in a fresh plain Node process on the built package
// (scripts/bench-child.mjs):
//   - sealStream / openStream of 1 GiB (MB/s, peak RSS);
//   - Encrypt of 1 KiB with 64 calls in flight (req/s), beside the Rust
//     SDK (`tresor bench`) in the same run.
// Run: npm run bench [-- GIB [SECONDS]]   (builds dist/ first)

import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BILLING, PACKAGE, REPO, TresorServer } from "../test/server.ts";

const GIB = Number(process.argv[2] ?? 1);
const SECONDS = Number(process.argv[3] ?? 10);
const TOTAL = Math.round(GIB * 1024) * (1 << 20);
const IN_FLIGHT = 64;
const MB = 1e6;

const bin = process.env.TRESOR_BIN || join(REPO, "target", "release", "tresor");
const server = await TresorServer.start(bin);
const env = { ...process.env, ...server.env("billing") };
const child = (...args) =>
  JSON.parse(
    execFileSync(process.execPath, [join(PACKAGE, "scripts/bench-child.mjs"), ...args], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
const file = join(tmpdir(), `tresor-bench-${process.pid}.tre`);
try {
  const key = "bench/stream";
  const admin = server.client("admin");
  await admin.createKey(key, BILLING);
  admin.close();

  const seal = child("seal", key, file, String(TOTAL));
  console.log(
    `sealStream ${GIB} GiB: ${(seal.bytes / MB / seal.seconds).toFixed(0)} MB/s ` +
      `(${seal.seconds.toFixed(1)} s), peak RSS ${seal.peakRssMiB.toFixed(0)} MiB`,
  );
  const open = child("open", key, file);
  console.log(
    `openStream ${GIB} GiB: ${(open.bytes / MB / open.seconds).toFixed(0)} MB/s ` +
      `(${open.seconds.toFixed(1)} s), peak RSS ${open.peakRssMiB.toFixed(0)} MiB`,
  );
  rmSync(file, { force: true });

  const node = child("encrypt", key, String(SECONDS), String(IN_FLIGHT));
  console.log(
    `Node SDK Encrypt 1 KiB, ${IN_FLIGHT} in flight: ${(node.calls / node.seconds).toFixed(0)} req/s ` +
      `(${node.calls} calls in ${node.seconds.toFixed(1)} s)`,
  );
  const rust = JSON.parse(
    execFileSync(
      bin,
      [
        "bench", "--key-id", key, "--mix", "encrypt", "--payload", "1024",
        "--context", "bench=1", "--concurrency", String(IN_FLIGHT), "--connections", "1",
        "--duration", `${SECONDS}s`, "--warmup", "1s", "--json",
      ], // biome-ignore format: one flag per pair
      { env, encoding: "utf8" },
    ),
  );
  console.log(
    `Rust SDK (tresor bench) Encrypt 1 KiB, ${IN_FLIGHT} in flight: ${rust.requests_per_second.toFixed(0)} req/s`,
  );
} finally {
  rmSync(file, { force: true });
  await server.stop();
}
