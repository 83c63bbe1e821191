/**
 * Typed errors: what happened, in words a caller can act on.
 *
 * Every error the SDK throws is a `TresorError`. A refusal by the server is
 * typed from its `x-tresor-reason` metadata when it carries one, else from
 * its gRPC status code, exactly as the Rust SDK's `ClientError`
 * (crates/tresor-client/src/error.rs) and the Python SDK's errors.py. Each
 * error carries the gRPC `code`, the `reason` and the server's `requestId`.
 *
 * The server's message text is read in two places only, as in the Rust SDK:
 * batch items (code and message, no metadata) and transport failures.
 */

import { type Metadata, status } from "@grpc/grpc-js";

/** The metadata key of the server's machine-readable reason. */
export const REASON_HEADER = "x-tresor-reason";
/** The metadata key of the request id, in answers and errors. */
export const REQUEST_ID_HEADER = "x-request-id";

/** Why a connection could not be made, as far as the client can tell. */
export enum ConnectHint {
  ServerNotRunning = "is the server running and listening at this address?",
  WrongCa = "the server's certificate is not signed by the CA given (ca, TRESOR_CA); use the CA that issued the server certificate",
  MissingClientCert = "the server requires a client certificate: give cert and key (TRESOR_CERT/TRESOR_KEY)",
  ClientCertRejected = "the server refused the client certificate: was it issued by the server's client CA (tresor certs issue), and is it still valid?",
  CertificateExpired = "a certificate has expired or is not yet valid: issue a new one with `tresor certs`",
  NameMismatch = "the server certificate does not name the host of the address; use a name or IP it was issued for",
  Timeout = "the server did not answer in time; check the address and the network",
  BadAddress = "the host name of the address does not resolve",
  Unknown = "check the address, ca, cert and key",
}

/** Classifies a transport failure from its text (the Rust SDK's needles, plus Node's spellings). */
export function classifyConnect(detail: string, hadClientCert: boolean): ConnectHint {
  const text = detail.toLowerCase().replaceAll("_", " ");
  const has = (...needles: string[]) => needles.some((n) => text.includes(n));
  if (has("connection refused", "econnrefused")) return ConnectHint.ServerNotRunning;
  if (has("expired", "notvalidyet", "not valid yet", "not yet valid"))
    return ConnectHint.CertificateExpired;
  if (has("certificaterequired", "certificate required")) return ConnectHint.MissingClientCert;
  if (
    has(
      "unknownissuer",
      "unknown issuer",
      "badsignature",
      "certificate verify failed",
      "unable to verify",
      "self-signed certificate",
      "self signed certificate",
      "unable to get local issuer",
      "unable to get issuer",
    )
  ) {
    return ConnectHint.WrongCa;
  }
  if (
    has(
      "notvalidforname",
      "not valid for name",
      "hostname mismatch",
      "peer name",
      "altnames",
      "does not match certificate",
    )
  ) {
    return ConnectHint.NameMismatch;
  }
  if (has("unknownca", "unknown ca", "badcertificate", "bad certificate", "decrypterror")) {
    return ConnectHint.ClientCertRejected;
  }
  if (
    has(
      "broken pipe",
      "connection reset",
      "econnreset",
      "connection closed",
      "unexpected eof",
      "socket closed",
      "socket hang up",
    )
  ) {
    return hadClientCert ? ConnectHint.ClientCertRejected : ConnectHint.MissingClientCert;
  }
  if (has("timed out", "deadline")) return ConnectHint.Timeout;
  if (has("enotfound", "getaddrinfo", "name resolution", "dns", "resolve"))
    return ConnectHint.BadAddress;
  return hadClientCert ? ConnectHint.Unknown : ConnectHint.MissingClientCert;
}

/** Fields every TresorError carries. */
export interface ErrorDetails {
  /** The gRPC status code; undefined when no call was made. */
  code?: status | undefined;
  /** The server's `x-tresor-reason`, if any. */
  reason?: string | undefined;
  /** The server's `x-request-id` of the call: quote it to an operator. */
  requestId?: string | undefined;
  cause?: unknown;
}

/** Base of every error the SDK throws. */
export class TresorError extends Error {
  readonly code: status | undefined;
  readonly reason: string | undefined;
  requestId: string | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = details.code;
    this.reason = details.reason;
    this.requestId = details.requestId;
  }

  /** The message with the request id, for a human. */
  override toString(): string {
    const text = `${this.name}: ${this.message}`;
    return this.requestId ? `${text} (request id ${this.requestId})` : text;
  }
}

/** The client was configured wrongly (no address, unreadable PEM file...). */
export class ConfigError extends TresorError {}

/** No connection: the server is unreachable, or TLS failed. `hint` says what to check. */
export class ConnectError extends TresorError {
  readonly endpoint: string;
  readonly hint: ConnectHint;
  constructor(message: string, endpoint: string, hint: ConnectHint, details: ErrorDetails = {}) {
    super(`cannot connect to ${endpoint}: ${message}\nhint: ${hint}`, details);
    this.endpoint = endpoint;
    this.hint = hint;
    this.detail = message;
  }
  /** The transport's own words. */
  readonly detail: string;
}

/** The caller may not do this, or the key does not exist (non-admins are not told which). */
export class PermissionDenied extends TresorError {}
/** The key (or alias, role binding) does not exist (admin calls). */
export class NotFound extends TresorError {}
/** The key id (or alias, role binding) is taken. */
export class AlreadyExists extends TresorError {}
/** The request was invalid (bad key id, too large, malformed field). */
export class InvalidArgument extends TresorError {}
/** The ciphertext is malformed, tampered with, or made with another key or context. */
export class InvalidCiphertext extends InvalidArgument {}
/** Decrypt was given a wrapped data key: open it with decryptDataKey. */
export class WrappedDataKey extends InvalidArgument {}
/** A rule on the key's state forbids this. */
export class FailedPrecondition extends TresorError {}
/** The key is disabled: an admin must enable it (`tresor key enable KEY`). */
export class KeyDisabled extends FailedPrecondition {}
/** The key is scheduled for deletion (`tresor key cancel-deletion KEY` while the window lasts). */
export class KeyPendingDeletion extends FailedPrecondition {}
/** The ciphertext's key version is below the key's minimum decryption version. */
export class KeyVersionBelowMinimum extends FailedPrecondition {}
/** The ciphertext's key version was destroyed: it can never be decrypted again. */
export class KeyVersionDestroyed extends FailedPrecondition {}
/** The key's purpose does not serve the call (Encrypt on a MAC key...). */
export class WrongKeyPurpose extends FailedPrecondition {}
/** The key's stored record fails its integrity check; an admin must restore it. */
export class KeyRecordTampered extends TresorError {}
/** The server is sealed (nothing was done; any call may be retried): `tresor unseal`. */
export class Sealed extends TresorError {}
/** The server cannot serve the call now (keystore or audit log unavailable). */
export class Unavailable extends TresorError {}
/** Too many requests, or a too-large message. */
export class ResourceExhausted extends TresorError {}
/** The caller exceeded its data-plane rate limit. */
export class RateLimited extends ResourceExhausted {}
/** The server could not identify the caller from its certificate. */
export class Unauthenticated extends TresorError {}
/** The server failed internally (details are in its log). */
export class Internal extends TresorError {}
/** Any other status code. */
export class OtherError extends TresorError {}
/** The server broke the protocol's contract (a batch answer of the wrong size...). */
export class ProtocolError extends TresorError {}
/** The call was cancelled by its AbortSignal. */
export class Cancelled extends TresorError {}

/** Base of the stream envelope's own failures. */
export class StreamError extends TresorError {}
/** The input is not a stream envelope this SDK can read. */
export class MalformedStream extends StreamError {}
/** The stream names a key (`found`) the caller does not expect; tresor was not asked. */
export class UnexpectedKey extends StreamError {
  readonly found: string;
  constructor(found: string) {
    super(
      `the stream was sealed under key ${JSON.stringify(found)}, which is not one this call accepts`,
    );
    this.found = found;
  }
}
/** A version 1 stream, refused unless the client accepts legacy streams. */
export class LegacyStream extends StreamError {}
/** The stream does not open under this context (changed, truncated, spliced, wrong context). */
export class UnauthenticStream extends StreamError {}
/** The stream would exceed 2^32 chunks, or its key id or wrapped key 1024 bytes. */
export class StreamTooLarge extends StreamError {}

type ErrorClass = new (message: string, details?: ErrorDetails) => TresorError;

const BY_REASON: Readonly<Record<string, ErrorClass>> = {
  KEY_DISABLED: KeyDisabled,
  KEY_PENDING_DELETION: KeyPendingDeletion,
  KEY_VERSION_BELOW_MINIMUM: KeyVersionBelowMinimum,
  KEY_VERSION_DESTROYED: KeyVersionDestroyed,
  INVALID_CIPHERTEXT: InvalidCiphertext,
  WRAPPED_DATA_KEY: WrappedDataKey,
  KEY_RECORD_TAMPERED: KeyRecordTampered,
  SEALED: Sealed,
  KEYSTORE_UNAVAILABLE: Unavailable,
  AUDIT_UNAVAILABLE: Unavailable,
  RATE_LIMITED: RateLimited,
  WRONG_KEY_PURPOSE: WrongKeyPurpose,
};

/** Every reason this SDK knows (the server's `Reason::ALL`). */
export const KNOWN_REASONS: readonly string[] = Object.freeze(Object.keys(BY_REASON));

const BY_CODE: Partial<Record<status, ErrorClass>> = {
  [status.PERMISSION_DENIED]: PermissionDenied,
  [status.NOT_FOUND]: NotFound,
  [status.ALREADY_EXISTS]: AlreadyExists,
  [status.INVALID_ARGUMENT]: InvalidArgument,
  [status.OUT_OF_RANGE]: InvalidArgument,
  [status.FAILED_PRECONDITION]: FailedPrecondition,
  [status.UNAUTHENTICATED]: Unauthenticated,
  [status.RESOURCE_EXHAUSTED]: ResourceExhausted,
  [status.INTERNAL]: Internal,
};

const TRANSPORT_CODES = new Set<status>([
  status.UNAVAILABLE,
  status.UNKNOWN,
  status.CANCELLED,
  status.DEADLINE_EXCEEDED,
]);

/** The reason behind a status without reason metadata, from the server's fixed messages. */
export function reasonFromMessage(code: status, message: string): string | undefined {
  if (code === status.FAILED_PRECONDITION) {
    if (message === "key is disabled") return "KEY_DISABLED";
    if (message === "key is pending deletion") return "KEY_PENDING_DELETION";
    if (message.includes("below the minimum decryption version"))
      return "KEY_VERSION_BELOW_MINIMUM";
    if (message.startsWith("key version") && message.endsWith("was destroyed"))
      return "KEY_VERSION_DESTROYED";
    if (message.startsWith("the key's purpose is ")) return "WRONG_KEY_PURPOSE";
  } else if (code === status.INVALID_ARGUMENT) {
    if (message.startsWith("invalid ciphertext")) return "INVALID_CIPHERTEXT";
  } else if (code === status.UNAVAILABLE) {
    if (message === "service is sealed") return "SEALED";
    if (message.startsWith("keystore unavailable")) return "KEYSTORE_UNAVAILABLE";
    if (message.startsWith("audit log unavailable")) return "AUDIT_UNAVAILABLE";
  }
  return undefined;
}

function metaValue(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.toString("utf8");
}

/** What the client knows of a failed call beyond its status. */
export interface StatusContext {
  trailers?: Metadata | undefined;
  headers?: Metadata | undefined;
  endpoint?: string;
  hadClientCert?: boolean;
}

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v, k.toLowerCase().replaceAll("_", " ")]),
);

/** The typed error for a failed call's status and metadata. */
export function fromStatus(code: status, message: string, ctx: StatusContext = {}): TresorError {
  const requestId =
    metaValue(ctx.trailers, REQUEST_ID_HEADER) ?? metaValue(ctx.headers, REQUEST_ID_HEADER);
  const sent = metaValue(ctx.trailers, REASON_HEADER);
  const reason = sent !== undefined && sent in BY_REASON ? sent : reasonFromMessage(code, message);
  const typed = reason === undefined ? undefined : BY_REASON[reason];
  if (typed) return new typed(message, { code, reason, requestId });
  const byCode = BY_CODE[code];
  if (byCode) return new byCode(message, { code, reason: sent, requestId });
  if (TRANSPORT_CODES.has(code)) {
    const detail = message || CODE_NAMES[code] || "transport failure";
    return new ConnectError(
      detail,
      ctx.endpoint ?? "",
      classifyConnect(detail, ctx.hadClientCert ?? true),
      {
        code,
        requestId,
      },
    );
  }
  return new OtherError(`${CODE_NAMES[code] ?? `status ${code}`}: ${message}`, {
    code,
    reason: sent,
    requestId,
  });
}

/** The typed error of one batch item (code numbered as google.rpc.Code). */
export function fromItemStatus(
  code: number,
  message: string,
  requestId: string | undefined,
): TresorError {
  const known = code in CODE_NAMES ? (code as status) : status.UNKNOWN;
  const error = fromStatus(known, message);
  error.requestId = requestId;
  return error;
}

const CERT_HINTS = new Set([
  ConnectHint.WrongCa,
  ConnectHint.MissingClientCert,
  ConnectHint.ClientCertRejected,
  ConnectHint.CertificateExpired,
  ConnectHint.NameMismatch,
]);

function cancelledUnsent(detail: string): boolean {
  return detail.includes("operation was canceled") && detail.includes("connection closed");
}

/** Whether the failure may pass: sealed, unavailable, or unreachable (not a certificate problem). */
export function isTransient(error: TresorError): boolean {
  if (error instanceof Sealed || error instanceof Unavailable) return true;
  if (error instanceof ConnectError)
    return cancelledUnsent(error.detail) || !CERT_HINTS.has(error.hint);
  return false;
}

/** Whether the server certainly did nothing, so that even an unsafe call may be sent again. */
export function nothingDone(error: TresorError): boolean {
  if (error instanceof Sealed) return true;
  if (error instanceof ConnectError) {
    return (
      error.hint === ConnectHint.ServerNotRunning ||
      error.hint === ConnectHint.BadAddress ||
      cancelledUnsent(error.detail)
    );
  }
  return false;
}
