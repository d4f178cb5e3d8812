// HTTP over local IPC (http/): serve() and HttpClient natively on Linux, in Deno and Bun, against
// peers that are not winpipe: curl --unix-socket, Python's http.client over AF_UNIX, and Node's
// own http server and client.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { isWindows, runtimeName } from "../ffi/runtime.ts";
import { HttpClient, serve } from "../http/mod.ts";

const skip = isWindows() ? "this is Windows: the pipe side runs under tests/win" : false;
const root = isWindows()
  ? ""
  : fs.mkdtempSync(join(process.platform === "darwin" ? "/tmp" : tmpdir(), "wp-http-"));
after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});
let counter = 0;
const sock = (what: string) => join(root, `${what}-${++counter}`);

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`${cmd}: ${e.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Sends raw bytes on a new connection and returns all that comes back until the server closes. */
function raw(path: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => s.write(bytes));
    let out = "";
    s.on("data", (d) => (out += d));
    s.on("end", () => resolve(out));
    s.on("error", reject);
    setTimeout(() => (s.destroy(), resolve(out)), 5_000);
  });
}

const echo = async (request: Request) => {
  const body = request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array(0);
  return new Response(body, {
    headers: { "x-method": request.method, "x-path": new URL(request.url).pathname },
  });
};

test(
  "serve() and HttpClient: requests and bodies both ways, 1 MiB streamed",
  { skip },
  async () => {
    const path = sock("basic");
    await using server = serve(path, echo);
    await using client = new HttpClient(path);
    const r = await client.fetch("/hello?x=1");
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-path"), "/hello");
    assert.equal(await r.text(), "");
    const big = new Uint8Array(1 << 20).map((_, i) => i * 7);
    const r2 = await client.fetch("/up", { method: "PUT", body: big });
    assert.equal(r2.headers.get("x-method"), "PUT");
    assert.deepEqual(new Uint8Array(await r2.arrayBuffer()), big);
    // A body that streams in, chunked.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(`part ${i};`));
        c.close();
      },
    });
    const r3 = await client.fetch("/stream", {
      method: "POST",
      body: stream,
      // @ts-ignore: a streamed body needs it
      duplex: "half",
    });
    assert.equal(await r3.text(), Array.from({ length: 10 }, (_, i) => `part ${i};`).join(""));
    void server;
  },
);

test("many requests in a row through one client, each answered (keep-alive in Bun)", {
  skip,
}, async () => {
  const path = sock("keep");
  const server = serve(path, (request) => Response.json({ url: request.url }));
  const client = new HttpClient(path, { maxConnections: 1 });
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = await client.fetch(`/n${i}`);
    seen.add((await r.json()).url);
  }
  assert.equal(seen.size, 20);
  await client.close();
  await server.shutdown();
});

test("curl --unix-socket against serve(): keep-alive, a POST, a 404 from the handler", {
  skip,
}, async () => {
  const path = sock("curl");
  await using server = serve(path, async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/missing") return new Response("no", { status: 404 });
    return new Response(`${request.method} ${url.pathname} ${(await request.text()).length}`);
  });
  const out = await run("curl", [
    "-s",
    "--unix-socket",
    path,
    "http://localhost/a",
    "-w",
    " %{http_code}\n",
    "http://localhost/missing",
    "-w",
    " %{http_code}\n",
  ]);
  assert.equal(out, "GET /a 0 200\nno 404\n");
  const post = await run("curl", [
    "-s",
    "--unix-socket",
    path,
    "-d",
    "x".repeat(1000),
    "http://localhost/p",
  ]);
  assert.equal(post, "POST /p 1000");
  void server;
});

test("Python's http.client over AF_UNIX against serve()", { skip }, async () => {
  const path = sock("py");
  await using server = serve(
    path,
    (request) => new Response(`py ${new URL(request.url).pathname}`),
  );
  const script = `
import http.client, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])
c = C("localhost")
for p in ("/one", "/two"):
    c.request("GET", p)
    r = c.getresponse()
    print(r.status, r.read().decode())
`;
  const out = await run("python3", ["-c", script, path]);
  assert.equal(out, "200 py /one\n200 py /two\n");
  void server;
});

test("HttpClient against Node's own http server on a Unix socket", { skip }, async () => {
  const path = sock("node");
  const code =
    `require("http").createServer((q, s) => { let n = 0; q.on("data", (d) => n += d.length);
    q.on("end", () => s.end(q.method + " " + q.url + " " + n)); }).listen(process.argv[1], () => console.log("ready"));`;
  const child = spawn("node", ["-e", code, path], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
    await using client = new HttpClient(path);
    assert.equal(await (await client.fetch("/x")).text(), "GET /x 0");
    assert.equal(
      await (await client.fetch("/y", { method: "POST", body: "abc" })).text(),
      "POST /y 3",
    );
  } finally {
    child.kill();
  }
});

test("malformed requests get 400, oversized heads 431, oversized bodies 413; the server goes on", {
  skip,
}, async () => {
  const path = sock("bad");
  await using server = serve(path, echo, { maxBodySize: 1000, maxHeaderSize: 4096 });
  const corpus = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
    "GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
  ];
  for (const bad of corpus) {
    const out = await raw(path, bad);
    assert.match(out, /^HTTP\/1\.1 400 /, `${JSON.stringify(bad)} got ${JSON.stringify(out)}`);
  }
  const big = await raw(path, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 431 /);
  const body = await raw(
    path,
    `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${"b".repeat(5000)}`,
  );
  assert.match(body, /^HTTP\/1\.1 413 /);
  // And it still serves.
  await using client = new HttpClient(path);
  assert.equal((await client.fetch("/fine")).status, 200);
  void server;
});

test(
  "shutdown(): the request in flight finishes, new connections are refused",
  { skip },
  async () => {
    const path = sock("down");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = serve(path, async () => {
      await gate;
      return new Response("finished");
    });
    const client = new HttpClient(path, { keepAlive: false });
    const inFlight = client.fetch("/slow");
    await new Promise((r) => setTimeout(r, 200));
    const down = server.shutdown();
    await new Promise((r) => setTimeout(r, 100));
    release();
    const r = await inFlight;
    assert.equal(await r.text(), "finished");
    await down;
    await server.finished;
    await assert.rejects(new HttpClient(path, { connect: { timeout: 200 } }).fetch("/late"));
    await client.close();
  },
);

test("the handler's failure becomes a 500 (or onError's response), and the server goes on", {
  skip,
}, async () => {
  const path = sock("err");
  const errors: unknown[] = [];
  await using server = serve(path, (request) => {
    if (request.url.endsWith("/throw")) throw new Error("boom");
    return new Response("ok");
  }, {
    onError: (e) => {
      errors.push(e);
      return new Response("sorry", { status: 503 });
    },
  });
  await using client = new HttpClient(path);
  const r = await client.fetch("/throw");
  assert.equal(r.status, 503);
  assert.equal(await r.text(), "sorry");
  assert.equal((errors[0] as Error).message, "boom");
  assert.equal(await (await client.fetch("/fine")).text(), "ok");
  void server;
  void runtimeName;
});

test("docs/http.md's example runs unchanged (tests/readme/http_api.ts)", { skip }, async () => {
  const file = new URL("./readme/http_api.ts", import.meta.url).pathname;
  const env: Record<string, string | undefined> = { ...process.env, TMPDIR: root };
  delete env.XDG_RUNTIME_DIR;
  const args = runtimeName() === "deno" ? ["run", "-A", file] : [file];
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, args, { env, timeout: 30_000 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`${e.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  assert.match(out, /\/status/);
  assert.match(out, /^hello$/m);
});
