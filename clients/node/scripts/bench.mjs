// Benchmarks of the Node SDK against a real tresor server (started here as
// the tests do, from $TRESOR_BIN or target/debug/tresor):
//   - sealStream / openStream of 1 GiB (MB/s, peak RSS of this process);
//   - Encrypt of 1 KiB with 64 calls in flight (req/s).
// Run: npm run bench   (node --import tsx scripts/bench.mjs [GiB])

import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { BILLING, TresorServer, tresorBin } from "../test/server.ts";

const GIB = Number(process.argv[2] ?? 1);
const TOTAL = Math.round(GIB * 1024) * (1 << 20);
const MB = 1e6;

let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 20);

function resetPeak() {
  peak = process.memoryUsage.rss();
}

async function* payload() {
  const block = randomBytes(1 << 20);
  for (let sent = 0; sent < TOTAL; sent += block.length) yield block;
}

const discard = () =>
  new Writable({
    write(_chunk, _enc, done) {
      done();
    },
  });

const { bin, reason } = tresorBin();
if (!bin) throw new Error(reason);
const server = await TresorServer.start(bin);
const admin = server.client("admin");
const client = server.client("billing");
const file = join(tmpdir(), `tresor-bench-${process.pid}.tre`);
try {
  const key = "bench/stream";
  await admin.createKey(key, BILLING);
  const ctx = { context: { bench: "1" } };

  resetPeak();
  let t = performance.now();
  const sealed = await client.sealStream(key, payload(), createWriteStream(file), ctx);
  let s = (performance.now() - t) / 1000;
  console.log(
    `sealStream ${TOTAL / 2 ** 30} GiB: ${(TOTAL / MB / s).toFixed(0)} MB/s (${s.toFixed(1)} s), ` +
      `${sealed.chunks} chunks, peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`,
  );

  resetPeak();
  t = performance.now();
  const opened = await client.openStream(
    key,
    createReadStream(file, { highWaterMark: 1 << 20 }),
    discard(),
    ctx,
  );
  s = (performance.now() - t) / 1000;
  console.log(
    `openStream ${TOTAL / 2 ** 30} GiB: ${(opened.bytesOut / MB / s).toFixed(0)} MB/s (${s.toFixed(1)} s), ` +
      `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`,
  );

  const plaintext = randomBytes(1024);
  const inFlight = 64;
  const perWorker = 200;
  await client.encrypt(key, plaintext); // warm the channel
  t = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = 0; i < perWorker; i++) await client.encrypt(key, plaintext, ctx);
    }),
  );
  s = (performance.now() - t) / 1000;
  console.log(
    `Encrypt 1 KiB, ${inFlight} in flight: ${((inFlight * perWorker) / s).toFixed(0)} req/s (${inFlight * perWorker} calls)`,
  );
} finally {
  clearInterval(sampler);
  rmSync(file, { force: true });
  client.close();
  admin.close();
  await server.stop();
}
