/**
 * Where the server is and how to prove who we are: the address, the CA and
 * the client certificate, from options or from the environment exactly as the
 * `tresor` CLI reads them (TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY).
 */

import { ConfigError } from "./errors.js";
import type { Pem } from "./tls-material.js";

export type { Pem } from "./tls-material.js";

/** Default per-call deadline, in ms. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** gRPC's default receive limit (4 MiB) is below what the server may answer. */
export const MAX_MESSAGE_BYTES = 64 << 20;

/** How to reach the server. */
export interface ConnectionOptions {
  /** `https://HOST:PORT` or `HOST:PORT`. */
  addr: string;
  /** The CA that signed the server certificate (path or PEM). */
  ca: Pem;
  /** The client certificate (path or PEM); with `key`, or neither. */
  cert?: Pem | undefined;
  /** The client certificate's private key (path or PEM). */
  key?: Pem | undefined;
  /** Verify the server certificate against this name instead of the address's host. */
  serverName?: string | undefined;
  /**
   * How often (ms, at most) files given as paths are checked again; when they
   * changed and the new set loads, new calls use it. Default 1000.
   */
  reloadIntervalMs?: number | undefined;
}

/** The gRPC target (host:port) and the host of `https://host:port` or `host:port`. */
export function parseAddress(addr: string): { target: string; host: string } {
  let raw = addr.trim();
  const scheme = raw.indexOf("://");
  if (scheme >= 0) {
    if (raw.slice(0, scheme).toLowerCase() !== "https") {
      throw new ConfigError(
        `invalid address ${JSON.stringify(addr)}: tresor is served over TLS only: give https://HOST:PORT or HOST:PORT`,
      );
    }
    raw = raw.slice(scheme + 3);
  }
  raw = raw.replace(/\/+$/, "");
  if (!raw || raw.includes("/")) {
    throw new ConfigError(
      `invalid address ${JSON.stringify(addr)}: give https://HOST:PORT or HOST:PORT`,
    );
  }
  let host: string;
  let port: string;
  if (raw.startsWith("[")) {
    const end = raw.indexOf("]");
    host = end < 0 ? "" : raw.slice(1, end);
    port = end >= 0 && raw[end + 1] === ":" ? raw.slice(end + 2) : "";
  } else {
    const colon = raw.lastIndexOf(":");
    host = colon < 0 ? "" : raw.slice(0, colon);
    port = colon < 0 ? "" : raw.slice(colon + 1);
  }
  const n = Number(port);
  if (!host || !/^\d+$/.test(port) || n <= 0 || n >= 65536) {
    throw new ConfigError(
      `invalid address ${JSON.stringify(addr)}: no host, or no port (HOST:PORT)`,
    );
  }
  return { target: raw, host };
}

/** Connection options from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY, as the CLI reads them. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ConnectionOptions {
  const addr = env.TRESOR_ADDR;
  if (!addr) {
    throw new ConfigError(
      "no server address: set TRESOR_ADDR to https://HOST:PORT (`tresor dev` prints the export lines)",
    );
  }
  const ca = env.TRESOR_CA;
  if (!ca) throw new ConfigError("no CA certificate: set TRESOR_CA to the CA's PEM file");
  return { addr, ca, cert: env.TRESOR_CERT || undefined, key: env.TRESOR_KEY || undefined };
}
