// The examples' client-and-server pairs run as they stand on Linux and macOS too, natively, in
// the runtime under test: with no arguments, on their default bare names (under a TMPDIR of this
// suite's own). tests/win/examples.test.ts runs them on Windows; tests/http.test.ts runs
// examples/docker.ts here.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { isWindows, runtimeName } from "../ffi/runtime.ts";

const skip = isWindows() ? "this is Windows: tests/win/examples.test.ts runs them there" : false;
const root = isWindows()
  ? ""
  : fs.mkdtempSync(join(process.platform === "darwin" ? "/tmp" : tmpdir(), "wp-ex-"));
const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const child of children) child.kill(); // a server whose client failed
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** Runs an example in this runtime; resolves with its stdout once it exits 0 (within 60 s). */
function example(file: string, args: string[] = []): Promise<string> {
  const argv = runtimeName() === "deno"
    ? ["run", "-A", `examples/${file}`, ...args]
    : [`examples/${file}`, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TMPDIR: root, XDG_RUNTIME_DIR: "" },
    });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${file} ${args.join(" ")}: exit ${code ?? signal}\n${out}${err}`));
    });
  });
}

test("examples/line_server.ts and line_client.ts, on their default name", { skip }, async () => {
  const server = example("line_server.ts", ["--once"]);
  server.catch(() => {}); // reported below
  const out = await example("line_client.ts");
  assert.equal(out, "HELLO, PIPE\n42\nbye\n");
  assert.equal(await server, "listening on winpipe-lines\n");
});

test(
  "examples/jsonrpc_server.ts and jsonrpc_client.ts, on their default name",
  { skip },
  async () => {
    const server = example("jsonrpc_server.ts", ["--once"]);
    server.catch(() => {});
    assert.equal(
      await example("jsonrpc_client.ts"),
      "initialized: winpipe-example\nhover: 6 words\nshut down\n",
    );
    assert.equal(await server, "listening on winpipe-jsonrpc\n");
  },
);
