// The demo's Windows half (Deno; natively or under Wine): starts Node for Windows as a pipe
// reader, sends 64 MiB through `winpipe send` from Deno and from Bun, verifies every byte by
// SHA-256 and prints the rate the reader saw.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const MiB = 1024 * 1024;
const size = Number(process.env.WINPIPE_DEMO_MIB || 64) * MiB;
const dir = join(".tmp", "demo");
const file = join(dir, `data-${size}.bin`);
mkdirSync(dir, { recursive: true });

// Deterministic, incompressible data: a xorshift stream.
if (!existsSync(file)) {
  const data = new Uint8Array(size);
  const words = new Uint32Array(data.buffer);
  let x = 2463534242;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  writeFileSync(file, data);
}
const expected = createHash("sha256").update(readFileSync(file)).digest("hex");

const node = process.env.WINPIPE_NODE || "node";
const senders: [string, string, string[]][] = [
  ["Deno", process.env.WINPIPE_DENO || process.execPath, [
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-env",
    "cli.ts",
  ]],
  ["Bun", process.env.WINPIPE_BUN || "bun", ["cli.ts"]],
];

function run(cmd: string, args: string[], log: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "ignore"] });
    child.on("error", (e) => {
      writeFileSync(log, String(e));
      resolve(-1);
    });
    child.on("exit", (code) => resolve(code));
  });
}

let failed = false;
console.log(`winpipe demo: ${size / MiB} MiB through \`winpipe send\` into Node's net server`);
for (const [label, exe, prefix] of senders) {
  const pipe = String.raw`\\.\pipe\winpipe-demo-` + `${label.toLowerCase()}-${process.pid}`;
  const result = join(dir, `result-${label}.json`);
  rmSync(result, { force: true });
  const reader = run(
    node,
    [join("tests", "win", "peers", "node_sink.cjs"), pipe, result],
    result + ".log",
  );
  const t0 = performance.now();
  const code = await run(
    exe,
    [...prefix, "send", "--wait", "--timeout", "30000", pipe, file],
    result + ".send.log",
  );
  const wall = (performance.now() - t0) / 1000;
  await reader;
  const r = existsSync(result) ? JSON.parse(readFileSync(result, "utf8")) : { error: "no result" };
  const ok = code === 0 && r.bytes === size && r.sha256 === expected;
  failed ||= !ok;
  // MiB/s, the unit `winpipe`'s own progress display uses.
  const rate = r.ms ? (size / MiB / (r.ms / 1000)).toFixed(1) : "?";
  console.log(
    `  ${label.padEnd(4)} send: exit ${code}, ${r.bytes ?? 0} bytes, sha256 ${
      ok ? "matches" : "DIFFERS"
    }`
      + `, ${rate} MiB/s while connected (${wall.toFixed(1)} s with start-up)`
      + (r.error ? `, reader: ${r.error}` : ""),
  );
}
console.log(failed ? "demo FAILED" : "demo OK: every byte verified");
process.exit(failed ? 1 : 0);
