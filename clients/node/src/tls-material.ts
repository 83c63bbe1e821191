/**
 * The TLS material of new channels, followed on disk as the Rust SDK's
 * `ca_file`/`identity_files` and the Python SDK's settings follow it: material
 * given as file paths is checked again (at most once per `reloadIntervalMs`,
 * from the call path: no timer keeps the process alive) and, when the files
 * changed and the new set loads, new calls go over a new channel built from
 * it, so a certificate renewed on disk (cert-manager, a SPIFFE helper) is
 * presented without a restart. A changed set that does not load (the
 * certificate written, the key not yet) is refused with a process warning
 * and the last good set stays in use. PEM given as bytes is fixed.
 */

import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { type ChannelCredentials, credentials } from "@grpc/grpc-js";
import { ConfigError } from "./errors.js";

/** A PEM source: a file path (followed on disk), or the PEM bytes themselves. */
export type Pem = string | Uint8Array;

/** Default of how often the files may be checked again, in ms. */
export const DEFAULT_RELOAD_INTERVAL_MS = 1_000;

/** The warning code of a changed set of files that does not load. */
export const RELOAD_WARNING = "TRESOR_TLS_RELOAD";

interface Loaded {
  credentials: ChannelCredentials;
  digest: string;
}

/** The CA, certificate and key of a client, and the credentials they make. */
export class TlsMaterial {
  readonly #sources: [ca: Pem, cert: Pem | undefined, key: Pem | undefined];
  readonly #reloadIntervalMs: number;
  #checkedAt: number;
  #stamp: string;
  #current: Loaded;

  /** Loads the material; ConfigError when it does not load. */
  constructor(ca: Pem, cert: Pem | undefined, key: Pem | undefined, reloadIntervalMs?: number) {
    if ((cert === undefined) !== (key === undefined)) {
      throw new ConfigError("give both cert and key (TRESOR_CERT and TRESOR_KEY), or neither");
    }
    this.#sources = [ca, cert, key];
    this.#reloadIntervalMs = reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
    this.#checkedAt = performance.now();
    this.#stamp = this.#fileStamp();
    this.#current = this.#load();
  }

  /** Whether a client certificate is presented. */
  get hasClientCert(): boolean {
    return this.#sources[1] !== undefined;
  }

  /** Whether some of the material comes from a file that may change. */
  get followsFiles(): boolean {
    return this.#sources.some((s) => typeof s === "string");
  }

  /** The credentials of the last set that loaded. */
  get credentials(): ChannelCredentials {
    return this.#current.credentials;
  }

  /**
   * Checks the files (at most once per reload interval): new credentials when
   * they changed and the new set loads, which new channels must use; else
   * undefined.
   */
  refresh(): ChannelCredentials | undefined {
    if (!this.followsFiles) return undefined;
    const now = performance.now();
    if (now - this.#checkedAt < this.#reloadIntervalMs) return undefined;
    this.#checkedAt = now;
    const stamp = this.#fileStamp();
    if (stamp === this.#stamp) return undefined;
    this.#stamp = stamp;
    let fresh: Loaded;
    try {
      fresh = this.#load();
    } catch (e) {
      process.emitWarning(
        `tresor: the changed TLS files do not load, keeping the last set: ${(e as Error).message}`,
        { code: RELOAD_WARNING },
      );
      return undefined;
    }
    if (fresh.digest === this.#current.digest) return undefined;
    this.#current = fresh;
    return fresh.credentials;
  }

  /** Identity, size and modification time of each file: cheap to compare on the call path. */
  #fileStamp(): string {
    return this.#sources
      .map((source) => {
        if (typeof source !== "string") return "-";
        try {
          const st = statSync(source, { bigint: true });
          return `${st.ino}:${st.size}:${st.mtimeNs}`;
        } catch {
          return "missing";
        }
      })
      .join("|");
  }

  #load(): Loaded {
    const [caSource, certSource, keySource] = this.#sources;
    const ca = readPem("CA", caSource);
    const cert = certSource === undefined ? null : readPem("certificate", certSource);
    const key = keySource === undefined ? null : readPem("key", keySource);
    const digest = createHash("sha256");
    for (const part of [ca, cert, key]) {
      digest.update(String(part?.length ?? -1)).update(":");
      if (part) digest.update(part);
    }
    try {
      // createSsl builds the TLS context now: it throws when a PEM does not
      // parse or the key is not the certificate's.
      return { credentials: credentials.createSsl(ca, key, cert), digest: digest.digest("hex") };
    } catch (e) {
      throw new ConfigError(`the TLS material does not load: ${(e as Error).message}`);
    } finally {
      key?.fill(0);
    }
  }
}

function readPem(what: string, source: Pem): Buffer {
  if (typeof source !== "string") return Buffer.from(source);
  try {
    return readFileSync(source);
  } catch (e) {
    throw new ConfigError(`${what} ${source}: ${(e as Error).message}`);
  }
}
