import { defineConfig } from "tsup";

// The npm package: ESM + .d.ts in dist/ (mod, cli, and http for `winpipe/http`), and the
// `winpipe` bin (dist/cli.js, run by Bun).
export default defineConfig({
  entry: { mod: "mod.ts", cli: "cli.ts", http: "http/mod.ts" },
  format: ["esm"],
  dts: true,
  clean: true,
  target: "es2022",
  platform: "node",
  splitting: true,
  sourcemap: true,
  external: ["bun:ffi"],
});
