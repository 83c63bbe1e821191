/**
 * A real tresor server for the tests, started as clients/python/tests/tresor_server.py
 * does: the `tresor` binary makes a CA, a server certificate, client
 * certificates and a master key, then `tresor serve` listens on an ephemeral
 * port of 127.0.0.1 (its log line `addr=...` tells which).
 *
 * The binary is $TRESOR_BIN, else target/debug/tresor from the repository
 * root. When it is missing the tests that need it skip, except under CI (the
 * CI variable set), where they fail.
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Client, type ClientOptions } from "../src/index.js";

export const PACKAGE = resolve(fileURLToPath(new URL("..", import.meta.url)));
export const REPO = resolve(PACKAGE, "../..");
export const TRUST_DOMAIN = "spiffe://tresor.test";
export const ADMIN = `${TRUST_DOMAIN}/admin`;
export const BILLING = `${TRUST_DOMAIN}/billing`;
export const SHIPPING = `${TRUST_DOMAIN}/shipping`;
export const LIMITED = `${TRUST_DOMAIN}/limited`;
const IDENTITIES: Record<string, string> = {
  admin: ADMIN,
  billing: BILLING,
  shipping: SHIPPING,
  limited: LIMITED,
};
const ADDR = /(?: addr=|"addr":")([0-9.]+:\d+)/;

/** The tresor binary, or undefined with the reason (a thrown error under CI). */
export function tresorBin(): { bin?: string; reason?: string } {
  const bin = process.env.TRESOR_BIN || join(REPO, "target", "debug", "tresor");
  try {
    accessSync(bin, constants.X_OK);
    return { bin };
  } catch {
    const reason = `the tresor binary is not at ${bin}: build it with \`cargo build\` or set TRESOR_BIN`;
    if (process.env.CI) throw new Error(`${reason} (CI is set: not skipping)`);
    return { reason };
  }
}

/** `tresor serve` on 127.0.0.1:0 with certificates for every test identity. */
export class TresorServer {
  readonly dir: string;
  readonly ca: string;
  addr = "";
  readonly log: string[] = [];
  #process: ChildProcess | undefined;

  private constructor(readonly bin: string) {
    this.dir = mkdtempSync(join(tmpdir(), "tresor-node-"));
    this.ca = join(this.dir, "ca", "ca.pem");
  }

  /** Makes the material and starts the server; resolves once it listens. */
  static async start(bin: string, ...serveFlags: string[]): Promise<TresorServer> {
    const srv = new TresorServer(bin);
    const d = srv.dir;
    srv.cli("certs", "ca", "--out", join(d, "ca"));
    srv.cli(
      "certs",
      "server",
      "--ca",
      join(d, "ca"),
      "--dns",
      "localhost",
      "--ip",
      "127.0.0.1",
      "--out",
      join(d, "server"),
    );
    for (const [name, identity] of Object.entries(IDENTITIES)) {
      srv.cli(
        "certs",
        "issue",
        "--ca",
        join(d, "ca"),
        "--identity",
        identity,
        "--out",
        join(d, name),
      );
    }
    srv.cli("master-key", "generate", "--out", join(d, "master.key"));
    const flags = [
      "serve", "--listen", "127.0.0.1:0", "--data-dir", join(d, "data"),
      "--tls-cert", join(d, "server", "cert.pem"), "--tls-key", join(d, "server", "key.pem"),
      "--client-ca", srv.ca, "--master-key-file", join(d, "master.key"),
      "--admin", ADMIN, "--audit-file", join(d, "audit.log"), ...serveFlags,
    ]; // biome-ignore format: one flag per pair
    const child = spawn(bin, flags, {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, TRESOR_LOG: "info", TRESOR_LOG_FORMAT: "pretty" },
    });
    srv.#process = child;
    const port = await new Promise<number>((resolveAddr, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`tresor serve did not report its address:\n${srv.log.join("\n")}`)),
        60_000,
      );
      const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
      let found = false;
      lines.on("line", (line) => {
        srv.log.push(line);
        const match = ADDR.exec(line);
        if (match && !found) {
          found = true;
          clearTimeout(timer);
          resolveAddr(Number((match[1] as string).split(":")[1]));
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        if (!found) reject(new Error(`tresor serve exited (${code}):\n${srv.log.join("\n")}`));
      });
    });
    srv.addr = `https://localhost:${port}`;
    return srv;
  }

  /** Runs the CLI; throws with its stderr when it exits non-zero. */
  cli(...args: string[]): string {
    return execFileSync(this.bin, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
    });
  }

  /** The certificate and key files of a client identity. */
  cert(name: string): { cert: string; key: string } {
    return { cert: join(this.dir, name, "cert.pem"), key: join(this.dir, name, "key.pem") };
  }

  /** TRESOR_* variables for connecting as `name`. */
  env(name: string): Record<string, string> {
    const { cert, key } = this.cert(name);
    return { TRESOR_ADDR: this.addr, TRESOR_CA: this.ca, TRESOR_CERT: cert, TRESOR_KEY: key };
  }

  /** A client connecting as `name`. */
  client(name: string, options: Partial<ClientOptions> = {}): Client {
    return new Client({ addr: this.addr, ca: this.ca, ...this.cert(name), ...options });
  }

  /** Stops the server and removes its files. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
