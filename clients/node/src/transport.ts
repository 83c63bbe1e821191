/**
 * One gRPC channel to the server and the unary call under the retry policy:
 * deadlines, AbortSignal cancellation, and the mapping of failures to typed
 * errors (with the request id of the call).
 */

import { Client as GrpcClient, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  type ConnectionOptions,
  channelCredentials,
  DEFAULT_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
  parseAddress,
} from "./connection.js";
import { Cancelled, fromStatus, REQUEST_ID_HEADER, type TresorError } from "./errors.js";
import { type AdminMethod, type CryptoMethod, lookup } from "./methods.js";
import { method } from "./proto.js";
import type { RetryPolicy } from "./retry.js";

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

/** The channel and how calls run on it. */
export class Transport {
  readonly endpoint: string;
  readonly hadClientCert: boolean;
  readonly #grpc: GrpcClient;

  constructor(
    options: ConnectionOptions,
    readonly timeoutMs: number = DEFAULT_TIMEOUT_MS,
  ) {
    this.endpoint = options.addr;
    const { target } = parseAddress(options.addr);
    this.hadClientCert = options.cert !== undefined;
    const channelOptions: Record<string, string | number> = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    };
    if (options.serverName) channelOptions["grpc.ssl_target_name_override"] = options.serverName;
    this.#grpc = new GrpcClient(target, channelCredentials(options), channelOptions);
  }

  /** Closes the channel; calls in flight fail. */
  close(): void {
    this.#grpc.close();
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
          const call = this.#grpc.makeUnaryRequest<Req, Resp>(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request,
            new Metadata(),
            { deadline },
            (err: ServiceError | null, response?: Resp) => {
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
    const call = this.#grpc.makeServerStreamRequest<Req, Resp>(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      request,
      new Metadata(),
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
