/**
 * Seals a file under a tresor key and opens it again, in constant memory.
 *
 *   export TRESOR_ADDR=https://localhost:8443 TRESOR_CA=ca.pem TRESOR_CERT=cert.pem TRESOR_KEY=key.pem
 *   node --import tsx examples/seal-file.ts billing/exports export.csv
 *
 * Writes export.csv.tre, then export.csv.opened (through a temporary file,
 * renamed only once the whole stream authenticated).
 */

import { createReadStream, createWriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { Client, TresorError } from "../src/index.js";

const [keyId, path] = process.argv.slice(2);
if (!keyId || !path) {
  console.error("usage: seal-file.ts KEY_ID FILE");
  process.exit(2);
}

const client = Client.fromEnv();
const context = { file: path };
try {
  const sealed = await client.sealStream(
    keyId,
    createReadStream(path),
    createWriteStream(`${path}.tre`),
    { context },
  );
  console.log(
    `sealed ${sealed.bytesIn} bytes into ${path}.tre (${sealed.chunks} chunks, key version ${sealed.keyVersion})`,
  );

  const temp = `${path}.opened.partial`;
  try {
    await client.openStream(keyId, createReadStream(`${path}.tre`), createWriteStream(temp), {
      context,
    });
    await rename(temp, `${path}.opened`);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  console.log(`opened into ${path}.opened`);
} catch (e) {
  if (e instanceof TresorError) {
    console.error(`${e.name}: ${e.message}${e.requestId ? ` (request id ${e.requestId})` : ""}`);
    process.exitCode = 1;
  } else {
    throw e;
  }
} finally {
  client.close();
}
