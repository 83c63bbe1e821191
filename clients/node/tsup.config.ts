import { defineConfig } from "tsup";

// ESM (dist/*.js) and CommonJS (dist/*.cjs), with declarations for both.
// `shims` gives the CommonJS build import.meta.url, which proto.ts uses to
// find the bundled proto file.
export default defineConfig({
  entry: ["src/index.ts", "src/envelope-tool.ts"],
  format: ["esm", "cjs"],
  dts: { entry: "src/index.ts" },
  shims: true,
  clean: true,
  sourcemap: true,
  target: "node20",
  splitting: false,
});
