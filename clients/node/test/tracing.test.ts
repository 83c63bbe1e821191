/**
 * The caller's trace continues into tresor: a call made inside an
 * OpenTelemetry span carries its `traceparent`, and the span tresor exports
 * for the call (to a real OTLP receiver, examples/otlp_sink.rs) is a child
 * of it. Against a real server started with `--otlp-endpoint`.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { context, type Span } from "@opentelemetry/api";
import { AsyncHooksContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import type { Client } from "../src/index.js";
import { traceMetadata } from "../src/trace-context.js";
import { BILLING, TresorServer, tresorBin } from "./server.js";

interface ExportedSpan {
  name: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string;
}

const { bin, reason: noServer } = tresorBin();
const SINK = bin ? join(dirname(bin), "examples", "otlp_sink") : "";
let reason = noServer;
if (!reason && !existsSync(SINK)) {
  reason = `no OTLP receiver at ${SINK}: build it with \`cargo build --examples\``;
  if (process.env.CI) throw new Error(`${reason} (CI is set: not skipping)`);
}

describe("trace context", { skip: reason ?? false }, () => {
  let sink: ChildProcess;
  let server: TresorServer;
  let billing: Client;
  const spans: ExportedSpan[] = [];
  const tracer = new BasicTracerProvider().getTracer("tresor-node-tests");
  const contextManager = new AsyncHooksContextManager().enable();

  before(async () => {
    context.setGlobalContextManager(contextManager);
    sink = spawn(SINK, ["--print", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    const lines = createInterface({ input: sink.stdout as NodeJS.ReadableStream });
    const addr = await new Promise<string>((resolve) => {
      lines.once("line", (line) => resolve(line.split(" ")[1] as string));
    });
    lines.on("line", (line) => spans.push(JSON.parse(line) as ExportedSpan));
    process.env.OTEL_BSP_SCHEDULE_DELAY = "100";
    server = await TresorServer.start(bin as string, "--otlp-endpoint", `http://${addr}`);
    const admin = server.client("admin");
    await admin.createKey("node/traced", BILLING);
    admin.close();
    billing = server.client("billing");
  });

  after(async () => {
    billing?.close();
    await server?.stop();
    sink?.kill();
    context.disable();
  });

  const exported = async (traceId: string): Promise<ExportedSpan> => {
    for (let waited = 0; waited < 30_000; waited += 100) {
      const found = spans.find(
        (s) => s.trace_id === traceId && s.name === "tresor.v1.Crypto/Encrypt",
      );
      if (found) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`no Encrypt span of trace ${traceId}`);
  };

  test("a call inside a span is a child of it", async () => {
    const span: Span = await tracer.startActiveSpan("checkout", async (span) => {
      await billing.encrypt("node/traced", Buffer.from("x"), { context: { tenant: "42" } });
      span.end();
      return span;
    });
    const { traceId, spanId } = span.spanContext();
    assert.equal((await exported(traceId)).parent_span_id, spanId);
  });

  test("the context survives awaits before the call", async () => {
    const span: Span = await tracer.startActiveSpan("later", async (span) => {
      await new Promise((r) => setTimeout(r, 10));
      await billing.encrypt("node/traced", Buffer.from("y"));
      span.end();
      return span;
    });
    const { traceId, spanId } = span.spanContext();
    assert.equal((await exported(traceId)).parent_span_id, spanId);
  });

  test("outside a span nothing is sent", () => {
    assert.deepEqual(traceMetadata().getMap(), {});
    tracer.startActiveSpan("inside", (span) => {
      const sent = traceMetadata().get("traceparent")[0] as string;
      assert.match(
        sent,
        new RegExp(`^00-${span.spanContext().traceId}-${span.spanContext().spanId}-01$`),
      );
      span.end();
    });
  });
});
