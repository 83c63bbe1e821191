/**
 * What every client shares: the transport, the retry policy and the
 * configuration. AdminClient (admin.ts) adds the control plane to this,
 * CryptoClient (crypto.ts) the data plane to that, Client (client.ts) the
 * stream envelope on top.
 */

import { inspect } from "node:util";
import { type ConnectionOptions, optionsFromEnv } from "./connection.js";
import { DataKeyCache, type DataKeyCacheLimits } from "./data-key-cache.js";
import type { AdminMethod, CryptoMethod } from "./methods.js";
import { RetryPolicy } from "./retry.js";
import { type Answer, type CallOptions, Transport } from "./transport.js";

/** Everything a client may be built with. */
export interface ClientOptions extends ConnectionOptions {
  /** Default deadline of each call (all its attempts), in ms. Default 30 s. */
  timeoutMs?: number;
  /** Retries of transient failures. Default: `new RetryPolicy()`. */
  retryPolicy?: RetryPolicy;
  /** Turns the data-key cache on (sealBytes/openBytes), with these limits. Off by default. */
  dataKeyCache?: Partial<DataKeyCacheLimits> | DataKeyCache;
  /** Also open version 1 streams (their data key is not proven to come from GenerateDataKey). */
  acceptLegacyStreams?: boolean;
}

/** The shared state of a client and of its clones (withRetryPolicy...). */
interface Shared {
  transport: Transport;
  cache: DataKeyCache | undefined;
}

/** The core of a client: runs calls; see Client. */
export class BaseClient {
  protected shared: Shared;
  protected policy: RetryPolicy;
  protected legacyStreams: boolean;

  constructor(options: ClientOptions) {
    const { dataKeyCache } = options;
    this.shared = {
      transport: new Transport(options, options.timeoutMs),
      cache:
        dataKeyCache === undefined
          ? undefined
          : dataKeyCache instanceof DataKeyCache
            ? dataKeyCache
            : new DataKeyCache(dataKeyCache),
    };
    this.policy = options.retryPolicy ?? new RetryPolicy();
    this.legacyStreams = options.acceptLegacyStreams ?? false;
  }

  /**
   * A client from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT and TRESOR_KEY (as the
   * CLI reads them), with `options` on top.
   */
  static fromEnv<T extends BaseClient>(
    this: new (
      options: ClientOptions,
    ) => T,
    options: Partial<ClientOptions> = {},
    env: NodeJS.ProcessEnv = process.env,
  ): T {
    return new this({ ...optionsFromEnv(env), ...options });
  }

  /** The address this client connects to. */
  get endpoint(): string {
    return this.shared.transport.endpoint;
  }

  /** The data-key cache, when it is on. */
  get dataKeyCache(): DataKeyCache | undefined {
    return this.shared.cache;
  }

  /** The retry policy. */
  get retryPolicy(): RetryPolicy {
    return this.policy;
  }

  /** A clone (same channel and cache) with another retry policy. */
  withRetryPolicy(policy: RetryPolicy): this {
    const clone = Object.create(Object.getPrototypeOf(this)) as this;
    Object.assign(clone, this, { policy });
    return clone;
  }

  /**
   * A clone (same channel and cache) that also opens version 1 streams. Only
   * for data whose writer is trusted, until it is re-sealed.
   */
  acceptingLegacyStreams(): this {
    const clone = Object.create(Object.getPrototypeOf(this)) as this;
    Object.assign(clone, this, { legacyStreams: true });
    return clone;
  }

  /** Closes the channel. */
  close(): void {
    this.shared.transport.close();
  }

  [inspect.custom](): string {
    return `${this.constructor.name} { endpoint: ${JSON.stringify(this.endpoint)} }`;
  }

  /** Runs one unary call under the retry policy. */
  protected async call<Resp>(
    name: CryptoMethod | AdminMethod,
    request: object,
    options?: CallOptions,
  ): Promise<Answer<Resp>> {
    return this.shared.transport.unary<object, Resp>(this.policy, name, request, options);
  }

  /** Runs one unary call; its response only. */
  protected async ask<Resp>(
    name: CryptoMethod | AdminMethod,
    request: object,
    options?: CallOptions,
  ): Promise<Resp> {
    return (await this.call<Resp>(name, request, options)).response;
  }

  /** Runs a server-streaming call. */
  protected serverStream<Resp>(
    name: AdminMethod,
    request: object,
    options?: CallOptions,
  ): AsyncGenerator<Resp> {
    return this.shared.transport.serverStream<object, Resp>(name, request, options);
  }
}
