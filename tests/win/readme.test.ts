// Every TypeScript example in README.md runs: each is a file in examples/ (examples.test.ts),
// tests/win/readme/ (this suite, each file run as a program in the runtime under test) or
// tests/win/peers/inherited.ts (inherit.test.ts), or tests/readme/ (here and natively in
// tests/unix.test.ts), word for word but for the import specifier;
// tests/readme_sync.test.ts checks that on Linux.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { listen } from "../../mod.ts";
import {
  type Exited,
  run,
  scriptCommand,
  type SpawnOptions,
  start,
  waitForOutput,
  withDir,
} from "./child.ts";
import { within } from "./server_end.ts";

const MY_APP = String.raw`\\.\pipe\my-app`;
const LIMIT = 60_000;

/** Runs tests/win/readme/FILE as a program (Deno: -A), and checks that it exited 0. */
async function snippet(file: string, dir: string, options: SpawnOptions = {}): Promise<Exited> {
  const [exe, args] = scriptCommand(resolve("tests", "win", "readme", file), ["-A"]);
  const e = await run(exe, args, dir, LIMIT, options);
  assert.equal(e.timedOut, false, `${file} timed out: ${e.stdout}${e.stderr}`);
  assert.equal(e.code, 0, `${file} exited ${e.code}: ${e.stdout}${e.stderr}`);
  return e;
}

/**
 * Runs a snippet (see {@link snippet}) while listening on \\.\pipe\my-app, and returns what its
 * one client sent there until it closed.
 */
async function sentToMyApp(file: string, dir: string, options?: SpawnOptions): Promise<Uint8Array> {
  const server = listen(MY_APP);
  try {
    const received = (async () => {
      const conn = (await server.accept())!;
      const bytes = new Uint8Array(await new Response(conn.readable).arrayBuffer());
      await conn.close();
      return bytes;
    })();
    await snippet(file, dir, options);
    return await within(LIMIT, received);
  } finally {
    await server.close();
  }
}

test("Install: the import names the exports", () =>
  withDir("readme", async (dir) => {
    const e = await snippet("install.ts", dir);
    assert.equal(e.stdout.trim(), "function function function");
  }));

test("Usage: write with backpressure, flush, close by leaving the block", () =>
  withDir("readme", async (dir) => {
    const text = new TextDecoder().decode(await sentToMyApp("usage_write.ts", dir));
    assert.equal(text, Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(""));
  }));

test("Usage: a file as a stream (Deno.open in Deno, Bun.file in Bun)", () =>
  withDir("readme", async (dir) => {
    const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 0xff);
    writeFileSync(join(dir, "big.bin"), data);
    // The example opens "big.bin" in its working directory.
    const file = process.versions.bun ? "stream_bun.ts" : "stream_deno.ts";
    assert.deepEqual(await sentToMyApp(file, dir, { cwd: dir }), data);
  }));

test("Usage: pipeTo with a signal and addAbortSignal gives up on a peer that never reads", () =>
  withDir("readme", async (dir) => {
    const server = listen(MY_APP);
    try {
      const accepted = server.accept(); // and never read
      const t0 = performance.now();
      const e = await snippet("stream_abort.ts", dir);
      assert.equal(e.stdout.trim(), "TimeoutError");
      // The 1 s signal, a runtime's start under Wine, and stop()'s bound (2 s) at most.
      assert.ok(performance.now() - t0 < 30_000);
      await (await accepted)?.close({ timeout: 1_000 });
    } finally {
      await server.close();
    }
  }));

test("Usage: errors carry code (the name), errno (the number) and syscall", () =>
  withDir("readme", async (dir) => {
    const e = await snippet("errors.ts", dir);
    assert.match(
      e.stderr.replaceAll("\r\n", "\n"),
      /^ERROR_FILE_NOT_FOUND 2 CreateFileW CreateFileW failed on \\\\\.\\pipe\\nobody: ERROR_FILE_NOT_FOUND \(2\): /m,
    );
  }));

test("Clients and servers: the echo server and the client work together", () =>
  withDir("readme", async (dir) => {
    const e = await snippet("echo_pair.ts", dir);
    assert.equal(e.stdout.trim(), "hello");
  }));

test("One API on every OS: the portable echo (a bare name) runs unchanged, as on Linux", () =>
  withDir("readme", async (dir) => {
    // The same file tests/unix.test.ts runs natively on Linux.
    const [exe, args] = scriptCommand(resolve("tests", "readme", "portable_echo.ts"), ["-A"]);
    const e = await run(exe, args, dir, LIMIT);
    assert.equal(e.timedOut, false, `timed out: ${e.stdout}${e.stderr}`);
    assert.equal(e.code, 0, `exited ${e.code}: ${e.stdout}${e.stderr}`);
    assert.equal(e.stdout.trim(), "hello, every OS");
  }));

test("Node streams: Duplex.fromWeb into vscode-jsonrpc, against examples/jsonrpc_server.ts", () =>
  withDir("readme", async (dir) => {
    const [exe, args] = scriptCommand("examples/jsonrpc_server.ts", ["-A"]);
    const name = String.raw`\\.\pipe\my-language-server`;
    const server = start(exe, [...args, name, "--once"], dir, LIMIT);
    try {
      await waitForOutput(server, "listening on", LIMIT); // the README's connect() does not wait
      const e = await snippet("node_streams.ts", dir);
      assert.equal(e.stdout.trim(), "winpipe-example");
      const exited = await server.exited;
      assert.equal(exited.code, 0, `${exited.stdout}${exited.stderr}`);
    } finally {
      server.kill();
      await server.exited.catch(() => {}); // its output files are in dir, removed next
    }
  }));
