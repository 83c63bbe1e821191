#!/usr/bin/env node

/**
 * `node dist/envelope-tool.js seal|open`: the stream envelope from the command
 * line, with the flags of `tresor envelope seal|open` (the conformance driver,
 * clients/conformance/, runs every SDK's tool alike).
 *
 *     seal KEY_ID [--context K=V ...] [--chunk-size BYTES] [--in FILE] [--out FILE]
 *     open --key-id KEY_ID [--key-id ...] [--context K=V ...] [--accept-legacy] [--in FILE] [--out FILE]
 *
 * The connection comes from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY.
 * Input is stdin and output stdout unless given. Exit 0 on success; else a
 * message on stderr and exit 1 (2 for a usage error). Opening with --out
 * writes to a private temporary file beside it, renamed over --out only once
 * the whole stream authenticated.
 */

import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "./client.js";
import { DEFAULT_CHUNK_SIZE } from "./stream-format.js";

const USAGE = `usage: envelope-tool seal KEY_ID [--context K=V ...] [--chunk-size BYTES] [--in FILE] [--out FILE]
       envelope-tool open --key-id KEY_ID [--key-id ...] [--context K=V ...] [--accept-legacy] [--in FILE] [--out FILE]`;

class UsageError extends Error {}

function pairs(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of raw) {
    const eq = pair.indexOf("=");
    if (eq < 0) throw new UsageError(`${JSON.stringify(pair)} is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Runs one command; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { command, keyIds, context, chunkSize, input, output, acceptLegacy } = parsed;
  const temp = output
    ? join(dirname(output), `.${basename(output)}.tresor-${randomBytes(6).toString("hex")}`)
    : undefined;
  let client: Client | undefined;
  try {
    client = Client.fromEnv({ acceptLegacyStreams: acceptLegacy });
    const src = input ? createReadStream(input) : process.stdin;
    const dst = temp ? createWriteStream(temp, { mode: 0o600 }) : process.stdout;
    const end = temp !== undefined;
    if (command === "seal") {
      await client.sealStream(keyIds[0] as string, src, dst, { context, chunkSize, end });
    } else {
      await client.openStream(keyIds, src, dst, { context, end });
    }
    if (temp && output) await rename(temp, output);
    return 0;
  } catch (e) {
    if (temp) await unlink(temp).catch(() => undefined);
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      context: { type: "string", short: "c", multiple: true, default: [] },
      "chunk-size": { type: "string" },
      "key-id": { type: "string", multiple: true, default: [] },
      "accept-legacy": { type: "boolean", default: false },
      in: { type: "string" },
      out: { type: "string" },
    },
  });
  const [command, ...rest] = positionals;
  const common = {
    context: pairs(values.context ?? []),
    input: values.in,
    output: values.out,
    acceptLegacy: values["accept-legacy"] ?? false,
  };
  if (command === "seal") {
    if (rest.length !== 1) throw new UsageError("seal takes exactly one KEY_ID");
    const chunkSize =
      values["chunk-size"] === undefined ? DEFAULT_CHUNK_SIZE : Number(values["chunk-size"]);
    if (!Number.isInteger(chunkSize)) throw new UsageError("--chunk-size takes a number of bytes");
    return { command, keyIds: rest, chunkSize, ...common };
  }
  if (command === "open") {
    const keyIds = values["key-id"] ?? [];
    if (rest.length !== 0 || keyIds.length === 0)
      throw new UsageError("open takes --key-id KEY_ID and no positional");
    return { command, keyIds, chunkSize: DEFAULT_CHUNK_SIZE, ...common };
  }
  throw new UsageError("the command is seal or open");
}

run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
