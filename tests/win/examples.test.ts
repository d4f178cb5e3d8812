// Every file in examples/ runs as it stands, in the runtime under test, against a local
// stand-in: the line server and client, the JSON-RPC server and client (vscode-jsonrpc over
// Duplex.fromWeb), and the Docker Engine API client (HttpClient, an attach upgrade included)
// against a stand-in engine: Node's HTTP server on a pipe.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { type Exited, run, scriptCommand, start, waitForOutput, withDir } from "./child.ts";
import { uniqueName } from "./server_end.ts";

const LIMIT = 60_000;
const DENO_PERMISSIONS = ["--allow-ffi", "--allow-read", "--allow-env", "--allow-sys"];

function example(file: string, args: string[], dir: string) {
  const [exe, argv] = scriptCommand(`examples/${file}`, DENO_PERMISSIONS);
  return { exe, argv: [...argv, ...args], dir };
}

function ok(e: Exited, what: string): string {
  assert.equal(e.timedOut, false, `${what} timed out:\n${e.stdout}${e.stderr}`);
  assert.equal(e.code, 0, `${what} exited ${e.code}:\n${e.stdout}${e.stderr}`);
  return e.stdout.replaceAll("\r\n", "\n");
}

test("every file in examples/ is run by this suite", () => {
  const covered = ["line_server.ts", "line_client.ts", "jsonrpc_server.ts", "jsonrpc_client.ts"]
    .concat(["docker.ts"]);
  assert.deepEqual(readdirSync("examples").sort(), covered.sort());
});

test("examples/line_server.ts and line_client.ts talk in lines, and both exit", () =>
  withDir("examples", async (dir) => {
    const name = uniqueName("ex-lines");
    const s = example("line_server.ts", [name, "--once"], dir);
    const server = start(s.exe, s.argv, dir, LIMIT);
    const c = example(
      "line_client.ts",
      [name, "upper hello, pipe", "add 2 40", "nonsense", "quit"],
      dir,
    );
    const out = ok(await run(c.exe, c.argv, dir, LIMIT), "the client");
    assert.equal(out, `HELLO, PIPE\n42\nerror: unknown command "nonsense"\nbye\n`);
    assert.equal(ok(await server.exited, "the server"), `listening on ${name}\n`);
  }));

test("examples/jsonrpc_server.ts and jsonrpc_client.ts: an LSP-style exchange", () =>
  withDir("examples", async (dir) => {
    const name = uniqueName("ex-rpc");
    const s = example("jsonrpc_server.ts", [name, "--once"], dir);
    const server = start(s.exe, s.argv, dir, LIMIT);
    const c = example("jsonrpc_client.ts", [name], dir);
    const out = ok(await run(c.exe, c.argv, dir, LIMIT), "the client");
    assert.equal(out, "initialized: winpipe-example\nhover: 6 words\nshut down\n");
    assert.equal(ok(await server.exited, "the server"), `listening on ${name}\n`);
  }));

test("examples/docker.ts: ping, version, containers and an attach upgrade, against a stand-in engine on a pipe", () =>
  withDir("examples", async (dir) => {
    const name = uniqueName("ex-docker");
    const node = process.env.WINPIPE_NODE || "node";
    const standIn = start(node, ["tests/peers/docker_stand_in.mjs", name], dir, LIMIT);
    await waitForOutput(standIn, "listening on", LIMIT);
    const c = example("docker.ts", [name], dir);
    const out = ok(await run(c.exe, c.argv, dir, LIMIT), "the client");
    assert.equal(
      out,
      "ping: OK (API 1.46)\nengine 27.0.0-stand-in, API 1.46, windows\n"
        + "container c0ffee00d00d /stand-in running\nstdout: hello from winpipe\n",
    );
    ok(await standIn.exited, "the stand-in (it ends after the attach)");
  }));
