// One measurement of scripts/bench.mjs in a fresh, plain Node process that
// loads the built package (dist/), as a service would: no TypeScript loader
// in the figures. Connects from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT,
// TRESOR_KEY; prints one JSON line; peak RSS is the kernel's VmHWM.
// Usage: node scripts/bench-child.mjs seal|open|encrypt KEY_ID FILE BYTES
//        node scripts/bench-child.mjs encrypt KEY_ID SECONDS IN_FLIGHT

import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { Client } from "../dist/index.js";

const [mode, keyId, arg, size] = process.argv.slice(2);
const context = { bench: "1" };
const client = Client.fromEnv();

const peakRssMiB = () =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024;

async function* payload(total) {
  const block = randomBytes(1 << 20);
  for (let sent = 0; sent < total; sent += block.length) yield block;
}

const discard = () =>
  new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });

let result;
const t = performance.now();
if (mode === "seal") {
  const total = Number(size);
  await client.sealStream(keyId, payload(total), createWriteStream(arg), { context });
  result = { bytes: total };
} else if (mode === "open") {
  const source = createReadStream(arg, { highWaterMark: 1 << 20 });
  const summary = await client.openStream(keyId, source, discard(), { context });
  result = { bytes: summary.bytesOut };
} else if (mode === "encrypt") {
  const plaintext = randomBytes(1024);
  const inFlight = Number(size);
  const until = performance.now() + 1000 * Number(arg);
  await client.encrypt(keyId, plaintext, { context }); // warm the channel
  let calls = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        await client.encrypt(keyId, plaintext, { context });
        calls++;
      }
    }),
  );
  result = { calls, seconds: (performance.now() - started) / 1000 };
} else {
  throw new Error(`unknown mode ${mode}`);
}
result.seconds ??= (performance.now() - t) / 1000;
client.close();
console.log(JSON.stringify({ mode, ...result, peakRssMiB: peakRssMiB() }));
