/**
 * The tresor.v1 proto, loaded at run time from the copy shipped in this
 * package (proto/tresor/v1/tresor.proto; test/proto.test.ts checks that it
 * equals crates/tresor-proto's). No protoc, no generated code.
 */

import { fileURLToPath } from "node:url";
import type { MethodDefinition } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

/** The path of the bundled proto file. */
export const PROTO_PATH = fileURLToPath(
  new URL("../proto/tresor/v1/tresor.proto", import.meta.url),
);

// Messages are plain objects with lowerCamelCase fields, 64-bit integers as
// numbers, enums as their names, bytes as Buffers and every field present.
const definition = loadSync(PROTO_PATH, {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});

/** The two services of tresor.v1. */
export type Service = "Crypto" | "Admin";

// biome-ignore lint/suspicious/noExplicitAny: messages are checked by the typed wrappers in calls.
export type AnyMethod = MethodDefinition<any, any>;

/** The definition of one RPC; throws for a method the proto does not have. */
export function method(service: Service, name: string): AnyMethod {
  const svc = definition[`tresor.v1.${service}`] as unknown as
    | Record<string, AnyMethod>
    | undefined;
  const def = svc?.[name];
  if (!def) throw new Error(`tresor.v1.${service}/${name} is not in the proto`);
  return def;
}

/** The names of a service's RPCs, as the proto declares them. */
export function methodNames(service: Service): string[] {
  const svc = definition[`tresor.v1.${service}`] as unknown as Record<string, AnyMethod>;
  return Object.values(svc).map((d) => d.path.split("/").pop() ?? "");
}
