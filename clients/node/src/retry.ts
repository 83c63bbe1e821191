/**
 * Retrying calls the server could not serve for a moment (sealed, keystore or
 * audit log unavailable, connection lost), with capped exponential backoff and
 * full jitter: the Rust SDK's policy (crates/tresor-client/src/retry.rs).
 *
 * Safe calls (reads, Encrypt, GenerateDataKey, admin calls that set a state)
 * are retried on every transient failure; unsafe ones (CreateKey, RotateKey,
 * DestroyKeyVersion, root and master key rotation, CreateAlias, DeleteAlias,
 * role bindings) only when the server certainly did nothing.
 */

import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { isTransient, nothingDone, TresorError } from "./errors.js";

/** How a call may be repeated. */
export enum Idempotency {
  /** Running it twice has the effect of running it once (or no effect). */
  Safe = "safe",
  /** Running it twice changes state twice. */
  Unsafe = "unsafe",
}

/** Fields of a RetryPolicy. */
export interface RetryPolicyOptions {
  /** Attempts in all, the first included (1 disables retries). Default 4. */
  maxAttempts?: number;
  /** The backoff cap before the first retry, in ms; it doubles each retry. Default 50. */
  initialBackoffMs?: number;
  /** The largest backoff cap, in ms. Default 2000. */
  maxBackoffMs?: number;
}

/** When and how often a failed call is tried again. Default: 4 attempts, waits below 50, 100, 200 ms. */
export class RetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;

  constructor(options: RetryPolicyOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? 4;
    this.initialBackoffMs = options.initialBackoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    if (!(this.maxAttempts >= 1) || !(this.initialBackoffMs >= 0) || !(this.maxBackoffMs >= 0)) {
      throw new RangeError("maxAttempts >= 1 and non-negative backoffs");
    }
  }

  /** No retries: every failure is thrown at once. */
  static none(): RetryPolicy {
    return new RetryPolicy({ maxAttempts: 1 });
  }

  /** The cap on the wait before retry number `retry` (from 1), in ms. */
  cap(retry: number): number {
    return Math.min(this.initialBackoffMs * 2 ** Math.max(retry - 1, 0), this.maxBackoffMs);
  }

  /** Whether `error` after attempt number `attempt` (from 1) calls for another. */
  shouldRetry(attempt: number, idempotency: Idempotency, error: unknown): boolean {
    if (attempt >= this.maxAttempts || !(error instanceof TresorError)) return false;
    return idempotency === Idempotency.Safe ? isTransient(error) : nothingDone(error);
  }

  /** A wait drawn uniformly from zero to the cap of retry number `retry`, in ms. */
  wait(retry: number): number {
    return (this.cap(retry) * randomInt(0, 1 << 30)) / (1 << 30);
  }

  /** Runs `attempt` until it succeeds, fails for good, or the attempts are spent. */
  async run<T>(
    idempotency: Idempotency,
    attempt: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let tried = 1; ; tried++) {
      try {
        return await attempt();
      } catch (error) {
        if (signal?.aborted || !this.shouldRetry(tried, idempotency, error)) throw error;
        await sleep(this.wait(tried), undefined, signal ? { signal } : undefined).catch(() => {
          throw error;
        });
      }
    }
  }
}
