// HTTP over local IPC (http/): serve() and HttpClient natively on Linux, in Deno and Bun, against
// peers that are not winpipe: curl --unix-socket, Python's http.client over AF_UNIX, and Node's
// own http server and client.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { isWindows, runtimeName } from "../ffi/runtime.ts";
import { HttpClient, HttpUpgradeError, serve } from "../http/mod.ts";
import { countingBody } from "./counting_body.ts";

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

/** serve() at `path`, answering `answer`, but a request to `held` only once `release()` is called. */
function heldServer(path: string, held: string, answer: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const server = serve(path, async (request) => {
    if (request.url.endsWith(held)) await released;
    return new Response(answer);
  });
  return { server, release };
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

test("many requests in a row through one client, each answered", {
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
    " %{http_code} %{num_connects}\n",
    "http://localhost/missing",
    "-w",
    " %{http_code} %{num_connects}\n",
  ]);
  // The second transfer made no connection of its own: keep-alive, in both runtimes.
  assert.equal(out, "GET /a 0 200 1\nno 404 0\n");
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

/**
 * A client that sends `head` a byte every `everyMs` ms and reads what comes back until the
 * server closes (or 10 s pass): the bytes, and when the end came.
 */
function trickle(path: string, head: string, everyMs: number) {
  return new Promise<{ out: string; ms: number; sent: number }>((resolve, reject) => {
    const start = performance.now();
    const s = createConnection(path);
    let out = "";
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < head.length && s.writable) s.write(head[sent++]);
    }, everyMs);
    const done = () => {
      clearInterval(timer);
      clearTimeout(cap);
      resolve({ out, ms: performance.now() - start, sent });
    };
    const cap = setTimeout(() => (s.destroy(), done()), 10_000);
    s.on("data", (d) => (out += d));
    s.on("close", done);
    s.on("error", (e: Error & { code?: string }) => {
      if (e.code === "EPIPE" || e.code === "ECONNRESET") return; // the server cut it off
      clearInterval(timer);
      reject(e);
    });
  });
}

test(
  "slowloris: a head trickled a byte at a time is cut off with 408 at headersTimeout; an idle connection closes at keepAliveTimeout; others are served meanwhile",
  {
    skip,
  },
  async () => {
    const path = sock("slow");
    await using server = serve(path, () => new Response("fine"), {
      headersTimeout: 800,
      keepAliveTimeout: 400,
    });
    const head = "GET / HTTP/1.1\r\nHost: x\r\n" + "X-Slow: " + "a".repeat(200) + "\r\n\r\n";
    const slow = trickle(path, head, 50);
    const idle = trickle(path, "", 50);
    // Served while both are held.
    await new Promise((r) => setTimeout(r, 200));
    await using client = new HttpClient(path);
    assert.equal(await (await client.fetch("/")).text(), "fine");
    const [s, i] = await Promise.all([slow, idle]);
    assert.match(s.out, /^HTTP\/1\.1 408 /, `the trickled head's answer: ${JSON.stringify(s.out)}`);
    assert.ok(s.sent < head.length, `cut off before the head was complete (${s.sent} bytes sent)`);
    assert.ok(
      s.ms >= 700 && s.ms < 5_000,
      `cut off after ${s.ms.toFixed(0)} ms (headersTimeout 800)`,
    );
    assert.equal(i.out, "", "the idle connection gets no answer");
    assert.ok(
      i.ms >= 300 && i.ms < 5_000,
      `idle closed after ${i.ms.toFixed(0)} ms (keepAliveTimeout 400)`,
    );
    // Still serving.
    assert.equal(await (await client.fetch("/")).text(), "fine");
    void server;
  },
);

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

test(
  "shutdown({ timeout }): a handler that never returns holds it no longer; its signal aborts",
  { skip },
  async () => {
    const path = sock("bound");
    let seen!: (reason: unknown) => void;
    const aborted = new Promise((r) => (seen = r));
    const server = serve(path, (request) => {
      request.signal.addEventListener("abort", () => seen(request.signal.reason));
      return new Promise<Response>(() => {}); // never answers
    });
    const client = new HttpClient(path, { keepAlive: false });
    const inFlight = client.fetch("/stuck");
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    // A later call with a shorter bound shortens it; one with a longer bound does not lengthen it.
    void server.shutdown({ timeout: 60_000 });
    const down = server.shutdown({ timeout: 300 });
    void server.shutdown({ timeout: 30_000 });
    await within(5_000, down, "shutdown({ timeout: 300 })");
    const took = performance.now() - t0;
    assert.ok(took >= 250 && took < 5_000, `shutdown took ${took.toFixed(0)} ms`);
    assert.equal(String(await aborted), "Error: the client left");
    await assert.rejects(inFlight);
    await server.finished;
    await assert.rejects(
      server.shutdown({ timeout: -1 }),
      /shutdown\(\): timeout must be a number of milliseconds >= 0/,
    );
    await client.close();
  },
);

test("shutdown({ timeout }) ends an event stream a live client reads; its body is cancelled", {
  skip,
}, async () => {
  const path = sock("sse");
  let cancelled!: (reason: unknown) => void;
  const wasCancelled = new Promise((r) => (cancelled = r));
  const server = serve(path, () => {
    let timer: ReturnType<typeof setInterval>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        timer = setInterval(() => c.enqueue(new TextEncoder().encode("data: tick\n\n")), 20);
      },
      cancel(reason) {
        clearInterval(timer);
        cancelled(reason);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const client = new HttpClient(path, { keepAlive: false });
  const r = await client.fetch("/events");
  const reading = r.text().catch(() => "ended"); // a live reader, to the end
  await new Promise((t) => setTimeout(t, 100));
  await within(5_000, server.shutdown({ timeout: 200 }), "shutdown({ timeout: 200 })");
  await within(5_000, wasCancelled, "the event stream's cancel()");
  await within(5_000, reading, "the client's read");
  await client.close();
});

test("shutdown({ timeout }) ends a long body whose client stopped reading", { skip }, async () => {
  const path = sock("stalled");
  const server = serve(path, () =>
    new Response(
      new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(1024 * 1024)) }), // endless
    ));
  const client = new HttpClient(path, { keepAlive: false });
  const r = await client.fetch("/big"); // its body is never read: the client stops reading
  await new Promise((t) => setTimeout(t, 200));
  await within(5_000, server.shutdown({ timeout: 300 }), "shutdown({ timeout: 300 })");
  await r.body?.cancel().catch(() => {});
  await client.close();
});

test("shutdown({ timeout: 0 }) closes the connections at once", { skip }, async () => {
  const path = sock("now");
  const server = serve(path, () => new Promise<Response>(() => {}));
  const client = new HttpClient(path, { keepAlive: false });
  const inFlight = client.fetch("/stuck");
  await new Promise((r) => setTimeout(r, 200));
  await within(2_000, server.shutdown({ timeout: 0 }), "shutdown({ timeout: 0 })");
  await assert.rejects(inFlight);
  await client.close();
});

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

/** Starts tests/peers/docker_stand_in.mjs under Node on `path`; resolves once it listens. */
async function dockerStandIn(path: string) {
  const child = spawn("node", ["tests/peers/docker_stand_in.mjs", path], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", () => reject(new Error("the stand-in exited before it listened")));
  });
  return { child, exited };
}

test(
  "examples/docker.ts: ping, version, containers and an attach upgrade, against a stand-in engine (Node) on a Unix socket",
  {
    skip,
  },
  async () => {
    const path = sock("docker");
    const { child, exited } = await dockerStandIn(path);
    try {
      const args = runtimeName() === "deno"
        ? ["run", "-A", "examples/docker.ts", path]
        : ["examples/docker.ts", path];
      assert.equal(
        await run(process.execPath, args),
        "ping: OK (API 1.46)\nengine 27.0.0-stand-in, API 1.46, linux\n"
          + "container c0ffee00d00d /stand-in running\nstdout: hello from winpipe\n",
      );
      assert.equal(await exited, 0, "the stand-in ends after the attach");
    } finally {
      child.kill();
    }
  },
);

test(
  "upgrade(): raw bytes both ways after 101; a refusal is an HttpUpgradeError with the server's answer",
  {
    skip,
  },
  async () => {
    const path = sock("upgrade");
    const { child } = await dockerStandIn(path);
    await using client = new HttpClient(path);
    try {
      const refused = await client.upgrade("/containers/nope/attach", { method: "POST" }).then(
        () => assert.fail("a missing container was upgraded"),
        (e) => e,
      );
      assert.ok(refused instanceof HttpUpgradeError, String(refused));
      assert.equal(refused.response.status, 404);
      assert.deepEqual(await refused.response.json(), { message: "No such container: nope" });
      const id = (await (await client.fetch("/containers/json")).json())[0].Id;
      // logs=1: a frame follows the 101's head in the same write, so the bytes read past the
      // head must reach the stream too.
      const up = await client.upgrade(`/containers/${id}/attach?stream=1&stdin=1&logs=1`, {
        method: "POST",
      });
      assert.equal(up.status, 101);
      assert.equal(up.headers.get("content-type"), "application/vnd.docker.raw-stream");
      const w = up.writable.getWriter();
      const reader = up.readable.getReader();
      // 256 KiB through the hijacked connection, framed back: every byte, in order, after the
      // earlier output.
      const sent = new Uint8Array(256 * 1024).map((_, i) => (i * 7) & 0xff);
      void w.write(sent);
      const earlier = new TextEncoder().encode("earlier output\n");
      const want = new Uint8Array([...earlier, ...sent]);
      const got: number[] = [];
      let buffered = new Uint8Array(0);
      // Bounded: a lost byte would otherwise leave the read waiting for ever.
      await within(
        10_000,
        (async () => {
          while (got.length < want.length) {
            const r = await reader.read();
            assert.ok(!r.done, `the stream ended after ${got.length} bytes`);
            buffered = new Uint8Array([...buffered, ...r.value]);
            while (buffered.length >= 8) {
              const size = new DataView(buffered.buffer).getUint32(4);
              if (buffered.length < 8 + size) break;
              assert.equal(buffered[0], 1, "stdout");
              got.push(...buffered.subarray(8, 8 + size));
              buffered = buffered.slice(8 + size);
            }
          }
        })(),
        "the earlier output and the 256 KiB, framed back",
      );
      assert.deepEqual(new Uint8Array(got), want);
      await up.close();
    } finally {
      child.kill();
    }
  },
);

/** `total` bytes of a pattern, as a stream of 64 KiB chunks made on demand. */
function patternStream(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(64 * 1024, total - sent);
      const chunk = new Uint8Array(n);
      for (let i = 0; i < n; i++) chunk[i] = (sent + i) % 251;
      sent += n;
      c.enqueue(chunk);
    },
  });
}

/** Counts a stream's bytes, checking them against patternStream's. */
async function checkPattern(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    for (let i = 0; i < chunk.byteLength; i += 4099) {
      if (chunk[i] !== (n + i) % 251) throw new Error(`byte ${n + i} is wrong`);
    }
    n += chunk.byteLength;
  }
  return n;
}

test("100 MiB streamed each way: a request body up, a response body down, byte-checked", {
  skip,
}, async () => {
  const path = sock("big");
  const size = 100 * 1024 * 1024;
  await using server = serve(path, async (request) => {
    const n = await checkPattern(request.body!);
    return new Response(patternStream(n));
  });
  await using client = new HttpClient(path);
  const r = await client.fetch("/big", { method: "POST", body: patternStream(size) });
  assert.equal(r.status, 200);
  assert.equal(await checkPattern(r.body!), size);
  void server;
});

test(
  "a client that leaves mid-body: its request body fails in the handler, a response it stops reading is cancelled, and the server goes on",
  {
    skip,
  },
  async () => {
    const path = sock("leave");
    let uploadFailed!: (e: unknown) => void;
    const uploadError = new Promise((r) => (uploadFailed = r));
    let downloadCancelled!: () => void;
    const cancelled = new Promise<void>((r) => (downloadCancelled = r));
    await using server = serve(path, async (request) => {
      if (request.url.endsWith("/up")) {
        try {
          await request.arrayBuffer();
        } catch (e) {
          uploadFailed(e);
          throw e;
        }
        return new Response("all of it");
      }
      if (request.url.endsWith("/down")) {
        // Without end: only the client's leaving stops it.
        return new Response(
          new ReadableStream({
            pull: (c) => c.enqueue(new Uint8Array(64 * 1024)),
            cancel: () => downloadCancelled(),
          }),
        );
      }
      return new Response("still here");
    }, { onError: () => new Response("failed", { status: 500 }) });
    // Promises 1 MB, sends 1000 bytes, leaves.
    const s = createConnection(path);
    await new Promise((r) => s.once("connect", r));
    s.write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + "x".repeat(1000));
    await new Promise((r) => setTimeout(r, 100));
    s.destroy();
    await within(5_000, uploadError, "the handler's body read failing");
    // Reads a little of an endless body, then leaves.
    const abort = new AbortController();
    await using client = new HttpClient(path);
    const r = await client.fetch("/down", { signal: abort.signal });
    const reader = r.body!.getReader();
    await reader.read();
    abort.abort();
    await reader.cancel().catch(() => {});
    await within(5_000, cancelled, "the response body's cancel()");
    await using again = new HttpClient(path);
    assert.equal(await (await again.fetch("/")).text(), "still here");
    void server;
  },
);

test("an abort after the response's head ends its body with the signal's reason", {
  skip,
}, async () => {
  const path = sock("abort-body");
  await using server = serve(path, () =>
    new Response(
      new ReadableStream({
        pull: (c) => new Promise((t) => setTimeout(t, 10)).then(() => c.enqueue(new Uint8Array(8))),
      }),
    ));
  await using client = new HttpClient(path);
  const abort = new AbortController();
  const r = await client.fetch("/endless", { signal: abort.signal });
  const reader = r.body!.getReader();
  await reader.read();
  const reason = new Error("enough");
  abort.abort(reason);
  await assert.rejects(
    within(
      5_000,
      (async () => {
        while (!(await reader.read()).done);
      })(),
      "the body's end",
    ),
    (e: unknown) => e === reason,
  );
});

test(
  "a client that leaves while the response body is idle: the body is cancelled and onError told",
  {
    skip,
  },
  async () => {
    const path = sock("leave-idle");
    let cancelled!: (reason: unknown) => void;
    let cancel = new Promise((r) => (cancelled = r));
    const told: unknown[] = [];
    await using server = serve(path, () =>
      // One event, then nothing more until the client has gone (an event stream between events).
      new Response(
        new ReadableStream({
          start: (c) => c.enqueue(new TextEncoder().encode("data: first\n\n")),
          cancel: (reason) => cancelled(reason),
        }),
      ), {
      onError: (e) => {
        told.push(e);
        return new Response("failed", { status: 500 });
      },
    });
    for (const leave of ["cancel", "close"] as const) {
      const client = new HttpClient(path);
      const r = await client.fetch("/events");
      const reader = r.body!.getReader();
      assert.equal(new TextDecoder().decode((await reader.read()).value), "data: first\n\n");
      if (leave === "cancel") await reader.cancel();
      await client.close();
      const reason = await within(5_000, cancel, `the idle body's cancel() (${leave})`);
      assert.match(String(reason), /the client left/);
      cancel = new Promise((r) => (cancelled = r));
      await within(
        5_000,
        (async () => {
          while (told.length === 0) await new Promise((r) => setTimeout(r, 10));
        })(),
        `onError (${leave})`,
      );
      assert.match(String(told.shift()), /the client left/);
    }
    void server;
  },
);

test(
  "a kept-alive connection that the server drops as a request goes out: a GET is sent again on a fresh one; a POST fails (in Bun: Deno's node:http resends it)",
  {
    skip,
  },
  async () => {
    const path = sock("drop-reused");
    // Answers each connection's first request (keep-alive) and drops the connection at its second:
    // the race of a server's idle timeout against a request on a pooled connection, made sure.
    const requests: string[] = [];
    const server = createServer((socket) => {
      let seen = 0;
      socket.on("data", (d) => {
        const line = String(d).split("\r\n")[0];
        requests.push(line);
        if (++seen > 1) return socket.destroy();
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await using client = new HttpClient(path, { maxConnections: 1 });
      assert.equal(await (await client.fetch("/a")).text(), "ok");
      assert.equal(await (await client.fetch("/b")).text(), "ok", "the GET, sent again");
      assert.deepEqual(requests, ["GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /b HTTP/1.1"]);
      const posted = await client.fetch("/c", { method: "POST", body: "once" }).then(
        async (r) => `answered ${r.status} ${await r.text()}`,
        (e) => e,
      );
      if (runtimeName() === "bun") {
        assert.ok(posted instanceof Error, String(posted));
        assert.deepEqual(
          requests.slice(3),
          ["POST /c HTTP/1.1"],
          "winpipe never sends a POST twice",
        );
      } else {
        // Deno's node:http sends it again by itself (Deno 2.9), GET or POST: docs/http.md says so.
        assert.deepEqual(
          requests.slice(3),
          ["POST /c HTTP/1.1", "POST /c HTTP/1.1"],
          String(posted),
        );
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  },
);

test(
  "a handler's Response whose body was read gets onError's answer; a failing onError ends the request; a body failing mid-way tells onError once",
  {
    skip,
  },
  async () => {
    const path = sock("bad-response");
    const told: string[] = [];
    await using server = serve(path, async (request) => {
      const what = new URL(request.url).pathname;
      if (what === "/read") {
        const r = new Response("once");
        await r.text();
        return r;
      }
      if (what === "/locked") {
        const r = new Response("once");
        r.body!.getReader();
        return r;
      }
      if (what === "/broken") throw new Error("for onError, which fails too");
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new Uint8Array([97]));
            c.error(new Error("mid-body"));
          },
        }),
      );
    }, {
      onError: (e) => {
        told.push(String((e as Error).message));
        if (String(e).includes("fails too")) throw new Error("onError failed");
        return new Response("from onError", { status: 500 });
      },
    });
    await using client = new HttpClient(path);
    for (const what of ["/read", "/locked"]) {
      const r = await within(5_000, client.fetch(what), `the answer to ${what}`);
      assert.equal(r.status, 500);
      assert.equal(await r.text(), "from onError");
    }
    assert.match(told.join("|"), /already read.*\|.*already read/);
    told.length = 0;
    await assert.rejects(
      within(5_000, client.fetch("/broken"), "the answer to /broken"),
      /hang up|ECONNRESET|closed|EPIPE/i,
    );
    told.length = 0;
    await within(
      5_000,
      client.fetch("/mid").then((r) => r.text()).catch(() => {}),
      "the body that fails mid-way",
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(told, ["mid-body"], "onError is told once");
    void server;
  },
);

test("an answer with Connection: close ends the connection at once (HTTP/1.0, or asked for)", {
  skip,
}, async () => {
  const path = sock("conn-close");
  await using server = serve(path, () => new Response("hi"));
  for (
    const request of [
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
      // Pipelined, the last asking for close: all answered, in order, then the end.
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
  ) {
    const t0 = performance.now();
    const answer = await raw(path, request);
    const took = performance.now() - t0;
    const answers = answer.match(/HTTP\/1\.[01] 200/g)?.length ?? 0;
    assert.equal(answers, request.split("GET").length - 1, JSON.stringify(answer));
    assert.match(answer, /\bhi\b/, JSON.stringify(answer));
    assert.ok(
      took < 2_000,
      `${JSON.stringify(request)}: the end came after ${Math.round(took)} ms`,
    );
  }
  void server;
});

test(
  "HttpClient.close() ends the requests in flight on kept connections too, and later ones fail",
  {
    skip,
  },
  async () => {
    const path = sock("client-close");
    const held = heldServer(path, "/slow", "ok");
    const release = held.release;
    await using server = held.server;
    const client = new HttpClient(path);
    try {
      // Three connections in the pool, then a slow request on each of them.
      await Promise.all([1, 2, 3].map(() => client.fetch("/").then((r) => r.text())));
      const slow = [1, 2, 3].map(() => client.fetch("/slow").then((r) => r.text()));
      for (const p of slow) p.catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
      await client.close();
      // Not sent again on a fresh connection (winpipe's retry, or Deno's own): they fail.
      const results = await within(
        2_000,
        Promise.allSettled(slow),
        "the requests in flight at close()",
      );
      assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected", "rejected"]);
      await assert.rejects(within(2_000, client.fetch("/"), "a request after close()"));
    } finally {
      release();
    }
    void server;
  },
);

test(
  "a body of known length goes with Content-Length, and fetch's Content-Type; a stream goes chunked",
  { skip },
  async () => {
    const path = sock("length");
    await using server = serve(path, async (request) =>
      new Response(
        JSON.stringify({
          length: request.headers.get("content-length"),
          chunked: request.headers.get("transfer-encoding"),
          type: request.headers.get("content-type"),
          body: await request.text(),
        }),
      ));
    await using client = new HttpClient(path);
    const sent = async (body: RequestInit["body"]) =>
      await (await client.fetch("/", {
        method: "POST",
        body,
        // @ts-ignore: a streamed request body needs it
        duplex: "half",
      })).json();
    assert.deepEqual(await sent("héllo"), {
      length: "6",
      chunked: null,
      type: "text/plain;charset=UTF-8",
      body: "héllo",
    });
    assert.deepEqual(await sent(new TextEncoder().encode("bytes")), {
      length: "5",
      chunked: null,
      type: null,
      body: "bytes",
    });
    assert.deepEqual(await sent(new Blob(["a blob"])), {
      length: "6",
      chunked: null,
      type: null,
      body: "a blob",
    });
    const typed = new Blob(["{}"], { type: "application/json" });
    assert.deepEqual(await sent(typed), {
      length: "2",
      chunked: null,
      type: typed.type, // Bun's adds ";charset=utf-8"
      body: "{}",
    });
    assert.deepEqual(await sent(new URLSearchParams({ a: "1 2" })), {
      length: "5",
      chunked: null,
      type: "application/x-www-form-urlencoded;charset=UTF-8",
      body: "a=1+2",
    });
    const stream = new ReadableStream({
      start: (c) => (c.enqueue(new TextEncoder().encode("streamed")), c.close()),
    });
    assert.deepEqual(await sent(stream), {
      length: null,
      chunked: "chunked",
      type: null,
      body: "streamed",
    });
    void server;
  },
);

test("a request body a handler reads slowly is not taken from the client faster (backpressure)", {
  skip,
}, async () => {
  const path = sock("slowbody");
  const MiB = 1024 * 1024;
  const total = 64 * MiB;
  const { body, pulled } = countingBody(total);
  let worst = 0;
  await using server = serve(path, async (request) => {
    const reader = request.body!.getReader();
    let read = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      read += r.value.byteLength;
      worst = Math.max(worst, pulled() - read);
      if (read < 16 * MiB) await new Promise((t) => setTimeout(t, 5)); // slow at first
    }
    return new Response(String(read));
  });
  await using client = new HttpClient(path);
  const r = await client.fetch("/up", { method: "POST", body, duplex: "half" } as RequestInit);
  assert.equal(await r.text(), String(total));
  // What the client had sent beyond what the handler had read: the buffers between them, not the
  // whole body (Bun's node:http read on regardless, and held it all in memory).
  assert.ok(
    worst < 24 * MiB,
    `the client ran ${(worst / MiB).toFixed(0)} MiB ahead of the handler`,
  );
});

test("a body the handler never reads does not stall the connection: the next request is answered", {
  skip,
}, async () => {
  const path = sock("unread");
  let answered = 0;
  let ignored: Request | undefined;
  await using server = serve(path, (request) => {
    answered++;
    if (request.method === "POST") ignored = request;
    return new Response(request.method === "POST" ? "no thanks" : "next", {
      status: request.method === "POST" ? 401 : 200,
    });
  });
  const size = 20 * 1024 * 1024;
  const out = await new Promise<string>((resolve, reject) => {
    const s = createConnection(path, () => {
      s.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      s.write(new Uint8Array(size));
      s.write("GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    });
    let text = "";
    s.on("data", (d) => (text += d));
    s.on("end", () => resolve(text));
    s.on("error", reject);
    setTimeout(() => (s.destroy(), resolve(text)), 8_000);
  });
  assert.match(out, /^HTTP\/1\.1 401 [^]*HTTP\/1\.1 200 [^]*\r\nnext\r\n/, out.slice(0, 400));
  assert.equal(answered, 2);
  // Read after its response, the dropped body says so, rather than wait for bytes gone.
  await assert.rejects(within(5_000, ignored!.arrayBuffer(), "the dropped body"), /dropped/);
});

test(
  "a handler's Content-Length is held to: a body longer or shorter ends the connection, onError told",
  {
    skip,
  },
  async () => {
    const path = sock("cl");
    const errors: string[] = [];
    await using server = serve(path, (request) => {
      if (request.url.endsWith("/after")) return new Response("after");
      const long = request.url.endsWith("/long");
      return new Response("x".repeat(20), { headers: { "content-length": long ? "10" : "30" } });
    }, {
      onError: (e) => {
        errors.push((e as Error).message);
        return new Response("unused", { status: 500 });
      },
    });
    for (const what of ["/long", "/short"]) {
      const t0 = performance.now();
      const out = await raw(
        path,
        `GET ${what} HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      // Never a byte past the length (it would be read as the next response), and never a wait for
      // bytes that will not come: the connection ends at once.
      assert.ok(performance.now() - t0 < 3_000, `${what}: the connection was held`);
      const body = out.split("\r\n\r\n")[1] ?? "";
      assert.ok(body.length <= (what === "/long" ? 10 : 20), `${what}: ${JSON.stringify(out)}`);
      assert.doesNotMatch(
        out,
        /HTTP\/1\.1 200[^]*HTTP\/1\.1/,
        `${what}: a second response followed`,
      );
    }
    assert.deepEqual(errors, [
      "the response body is longer than its Content-Length (10 bytes)",
      "the response body ended after 20 of the 30 bytes its Content-Length declares",
    ]);
  },
);

test("Expect: 100-continue: a body within maxBodySize is invited; one past it gets 413, no 100", {
  skip,
}, async () => {
  const path = sock("continue");
  await using server = serve(
    path,
    async (request) => new Response(`got ${(await request.text()).length}`),
    {
      maxBodySize: 1000,
    },
  );
  // Only the head is sent: the server's first answer is what is looked at.
  const ask = (size: number) =>
    new Promise<string>((resolve, reject) => {
      const s = createConnection(path, () =>
        s.write(
          `POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${size}\r\n\r\n`,
        ));
      s.once("data", (d) => (s.destroy(), resolve(String(d))));
      s.on("error", reject);
    });
  assert.match(await within(5_000, ask(10), "the 100"), /^HTTP\/1\.1 100 Continue\r\n/);
  assert.match(await within(5_000, ask(5000), "the 413"), /^HTTP\/1\.1 413 /);
});

test("maxBodySize holds when the handler answers before it reads the body (an echo)", {
  skip,
}, async () => {
  const path = sock("echo-limit");
  const MAX = 1 << 20;
  await using server = serve(path, (request) => new Response(request.body), {
    maxBodySize: MAX,
  });
  await using client = new HttpClient(path);
  let echoed = 0;
  const outcome = await within(
    10_000,
    (async () => {
      const r = await client.fetch("/echo", {
        method: "POST",
        body: patternStream(4 * MAX),
        // @ts-ignore: a streamed request body needs it
        duplex: "half",
      });
      for await (const chunk of r.body! as unknown as AsyncIterable<Uint8Array>) {
        echoed += chunk.byteLength;
      }
      return `all ${echoed} bytes echoed, status ${r.status}`;
    })().catch((e) => e),
    "the echo past maxBodySize",
  );
  // The answer had begun (200), so it cannot become a 413: the connection ends mid-body.
  assert.ok(outcome instanceof Error, String(outcome));
  assert.ok(echoed <= MAX + 256 * 1024, `${echoed} bytes echoed past a ${MAX}-byte limit`);
  // And the server goes on.
  assert.equal(await (await client.fetch("/x", { method: "POST", body: "small" })).text(), "small");
  void server;
});

test(
  "init.signal ends a request on a kept-alive connection, and the connection's slot is free again",
  {
    skip,
  },
  async () => {
    const path = sock("abort-kept");
    const held = heldServer(path, "/never", "answered");
    const release = held.release;
    await using server = held.server;
    // One connection: the aborted request must have had the one the first request left open.
    await using client = new HttpClient(path, { maxConnections: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal(await (await client.fetch("/")).text(), "answered");
        const t0 = performance.now();
        const failed = await within(
          3_000,
          client.fetch("/never", { signal: AbortSignal.timeout(200) }).then(
            () => assert.fail("an aborted request resolved"),
            (e) => e,
          ),
          `the aborted request on a kept-alive connection (${i})`,
        );
        assert.equal((failed as Error).name, "TimeoutError", String(failed));
        assert.ok(performance.now() - t0 < 2_000);
      }
      assert.equal(await (await client.fetch("/")).text(), "answered");
    } finally {
      release();
    }
    void server;
  },
);

test("1000 requests leave the descriptors where they were", { skip }, async () => {
  const path = sock("fds");
  const count = () =>
    fs.readdirSync(fs.existsSync("/proc/self/fd") ? "/proc/self/fd" : "/dev/fd").length;
  await using server = serve(path, () => new Response("ok"));
  const round = async (n: number) => {
    const client = new HttpClient(path);
    for (let i = 0; i < n; i++) assert.equal(await (await client.fetch(`/${i}`)).text(), "ok");
    await client.close();
  };
  await round(20); // the runtime's own descriptors, made once
  await new Promise((r) => setTimeout(r, 300));
  const before = count();
  await round(1000);
  let after = count();
  for (let i = 0; i < 50 && after > before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = count();
  }
  assert.ok(after <= before, `${before} descriptors before 1000 requests, ${after} after`);
  void server;
});

/** `p`, or a failure naming `what` after `ms`. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test(
  "pipelined requests are answered in order, or the first is answered and the connection closed",
  {
    skip,
  },
  async () => {
    const path = sock("pipelined");
    await using server = serve(path, (request) => new Response(new URL(request.url).pathname));
    const out = await raw(
      path,
      "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const responses = out.split(/(?=HTTP\/1\.1 )/);
    // Either body may come chunked: the path is in it either way.
    const answer = (r: string, body: string) =>
      r.startsWith("HTTP/1.1 200 ") && r.slice(r.indexOf("\r\n\r\n")).includes(body);
    assert.ok(answer(responses[0], "/first"), JSON.stringify(out));
    if (responses.length > 1) {
      assert.equal(responses.length, 2, JSON.stringify(out));
      assert.ok(answer(responses[1], "/second"), JSON.stringify(out));
    } else {
      assert.match(responses[0], /\r\nconnection: close\r\n/i, "refused: the first says close");
    }
    await using client = new HttpClient(path);
    assert.equal(await (await client.fetch("/after")).text(), "/after");
    void server;
  },
);

test(
  "upgrade(): against a server that stops reading, a write waits and close() ends within closeTimeout",
  {
    skip,
  },
  async () => {
    const path = sock("deaf");
    // Upgrades, then never reads again.
    const code = `require("http").createServer().on("upgrade", (q, s) => {
    s.write("HTTP/1.1 101 UPGRADED\\r\\nConnection: Upgrade\\r\\nUpgrade: tcp\\r\\n\\r\\n"); s.pause();
  }).listen(process.argv[1], () => console.log("ready"));`;
    const child = spawn("node", ["-e", code, path], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
      await using client = new HttpClient(path, { connect: { closeTimeout: 500 } });
      const up = await client.upgrade("/deaf", { method: "POST" });
      const w = up.writable.getWriter();
      let settled = false;
      const writing = w.write(new Uint8Array(16 << 20)).finally(() => (settled = true));
      writing.catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(settled, false, "16 MiB cannot be queued below the mark of a deaf peer");
      // A read waiting when close() is called ends with the stream: the server sends nothing.
      const reading = up.readable.getReader().read();
      const t0 = performance.now();
      await within(5_000, up.close(), "close() against a server that stops reading");
      assert.deepEqual(
        await within(1_000, reading, "a read pending across close()"),
        { done: true, value: undefined },
      );
      assert.ok(performance.now() - t0 >= 400, "close() flushed for its closeTimeout first");
      await assert.rejects(within(5_000, writing, "the pending write"));
    } finally {
      child.kill();
    }
  },
);
