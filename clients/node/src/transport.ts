/**
 * The gRPC channel to the server and the unary call under the retry policy:
 * deadlines, AbortSignal cancellation, and the mapping of failures to typed
 * errors (with the request id of the call). When the TLS files change
 * (tls-material.ts), new calls go over a new channel; the old one closes
 * once its calls in flight are done.
 */

import {
  type ChannelCredentials,
  Client as GrpcClient,
  type Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  type ConnectionOptions,
  DEFAULT_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
  parseAddress,
} from "./connection.js";
import { Cancelled, fromStatus, REQUEST_ID_HEADER, type TresorError } from "./errors.js";
import { type AdminMethod, type CryptoMethod, lookup } from "./methods.js";
import { method } from "./proto.js";
import type { RetryPolicy } from "./retry.js";
import { TlsMaterial } from "./tls-material.js";
import { traceMetadata } from "./trace-context.js";

/** Per-call options. */
export interface CallOptions {
  /** Deadline for the whole call (every attempt), in ms from now. Default: the client's timeout. */
  timeoutMs?: number;
  /** Cancels the call (and its retries); the call then rejects with `Cancelled`. */
  signal?: AbortSignal;
}

/** A response with the request id the server answered with. */
export interface Answer<T> {
  response: T;
  requestId: string | undefined;
}

/** One channel, and how many calls run on it. */
class Channel {
  inFlight = 0;
  retired = false;
  constructor(readonly grpc: GrpcClient) {}

  /** Marks a call done; closes a retired channel once it has none left. */
  release(): void {
    this.inFlight -= 1;
    if (this.retired && this.inFlight === 0) this.grpc.close();
  }

  /** No new calls: closes now, or when the last call in flight is done. */
  retire(): void {
    this.retired = true;
    if (this.inFlight === 0) this.grpc.close();
  }
}

/** The channel and how calls run on it. */
export class Transport {
  readonly endpoint: string;
  readonly hadClientCert: boolean;
  readonly #target: string;
  readonly #channelOptions: Record<string, string | number>;
  readonly #tls: TlsMaterial;
  #channel: Channel;

  constructor(
    options: ConnectionOptions,
    readonly timeoutMs: number = DEFAULT_TIMEOUT_MS,
  ) {
    this.endpoint = options.addr;
    this.#target = parseAddress(options.addr).target;
    this.#tls = new TlsMaterial(options.ca, options.cert, options.key, options.reloadIntervalMs);
    this.hadClientCert = this.#tls.hasClientCert;
    this.#channelOptions = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    };
    if (options.serverName)
      this.#channelOptions["grpc.ssl_target_name_override"] = options.serverName;
    this.#channel = this.#open(this.#tls.credentials);
  }

  #open(credentials: ChannelCredentials): Channel {
    return new Channel(new GrpcClient(this.#target, credentials, this.#channelOptions));
  }

  /** The channel of a new call (a new one when the TLS files changed), counted in flight. */
  #acquire(): Channel {
    const renewed = this.#tls.refresh();
    if (renewed) {
      this.#channel.retire();
      this.#channel = this.#open(renewed);
    }
    this.#channel.inFlight += 1;
    return this.#channel;
  }

  /** Closes the channel; calls in flight fail. */
  close(): void {
    this.#channel.grpc.close();
  }

  /** Runs a unary call under `policy`; rejects with a TresorError. */
  async unary<Req, Resp>(
    policy: RetryPolicy,
    name: CryptoMethod | AdminMethod,
    request: Req,
    options: CallOptions = {},
  ): Promise<Answer<Resp>> {
    const { service, idempotency } = lookup(name);
    const def = method(service, name);
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    return policy.run(
      idempotency,
      () =>
        new Promise<Answer<Resp>>((resolve, reject) => {
          const { signal } = options;
          if (signal?.aborted) {
            reject(new Cancelled("the call was aborted", { cause: signal.reason }));
            return;
          }
          let headers: Metadata | undefined;
          const channel = this.#acquire();
          const call = channel.grpc.makeUnaryRequest<Req, Resp>(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request,
            traceMetadata(),
            { deadline },
            (err: ServiceError | null, response?: Resp) => {
              channel.release();
              signal?.removeEventListener("abort", onAbort);
              if (err) {
                reject(this.error(err, headers, signal));
              } else {
                resolve({ response: response as Resp, requestId: requestIdOf(headers) });
              }
            },
          );
          call.on("metadata", (m: Metadata) => {
            headers = m;
          });
          const onAbort = () => call.cancel();
          signal?.addEventListener("abort", onAbort, { once: true });
        }),
      options.signal,
    );
  }

  /** Runs a server-streaming call (CreateBackup), yielding each message. */
  async *serverStream<Req, Resp>(
    name: AdminMethod,
    request: Req,
    options: CallOptions = {},
  ): AsyncGenerator<Resp> {
    const def = method("Admin", name);
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    const channel = this.#acquire();
    const call = channel.grpc.makeServerStreamRequest<Req, Resp>(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      request,
      traceMetadata(),
      { deadline },
    );
    let headers: Metadata | undefined;
    call.on("metadata", (m: Metadata) => {
      headers = m;
    });
    const onAbort = () => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const message of call) yield message as Resp;
    } catch (err) {
      throw this.error(err as ServiceError, headers, options.signal);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      call.cancel();
      channel.release();
    }
  }

  /** The typed error of a failed call. */
  error(err: ServiceError, headers: Metadata | undefined, signal?: AbortSignal): TresorError {
    if (signal?.aborted && err.code === status.CANCELLED) {
      return new Cancelled("the call was aborted", {
        cause: signal.reason,
        requestId: requestIdOf(headers),
      });
    }
    return fromStatus(err.code ?? status.UNKNOWN, err.details ?? err.message, {
      trailers: err.metadata,
      headers,
      endpoint: this.endpoint,
      hadClientCert: this.hadClientCert,
    });
  }
}

function requestIdOf(headers: Metadata | undefined): string | undefined {
  const value = headers?.get(REQUEST_ID_HEADER)[0];
  return value === undefined ? undefined : value.toString();
}
