// HTTP over named pipes (http/) against real kernel32: serve() and HttpClient, and Node for
// Windows' own http client and server on the same pipe.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { HttpClient, serve } from "../../http/mod.ts";
import { connect, type PipeConnection } from "../../mod.ts";
import { countingBody } from "../counting_body.ts";
import { assertHandlesBack, settledSnapshot } from "./handles.ts";
import { sleep, uniqueName, within } from "./server_end.ts";

const node = process.env.WINPIPE_NODE || "node";

test("serve() and HttpClient on a named pipe: bodies both ways, 1 MiB", async () => {
  const name = uniqueName("http");
  const server = serve(name, async (request, info) => {
    const body = new Uint8Array(await request.arrayBuffer());
    return new Response(body, {
      headers: { "x-pid": String(info.peerProcessId), "x-user": String(info.peerUser) },
    });
  });
  const client = new HttpClient(name);
  try {
    const big = new Uint8Array(1 << 20).map((_, i) => i * 13);
    const r = await within(30_000, client.fetch("/up", { method: "POST", body: big }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-pid"), String(process.pid));
    assert.match(r.headers.get("x-user")!, /^S-1-/);
    assert.deepEqual(new Uint8Array(await r.arrayBuffer()), big);
    const again = await client.fetch("/again", { method: "POST", body: "x" });
    assert.equal(await again.text(), "x");
  } finally {
    await client.close();
    await within(10_000, server.shutdown(), "shutdown()");
  }
});

test("a request body on a pipe is read as fast as the handler reads it, and one never read is dropped", async () => {
  const name = uniqueName("http-body");
  const MiB = 1024 * 1024;
  const total = 32 * MiB;
  const { body, pulled } = countingBody(total);
  let worst = 0;
  const server = serve(name, async (request) => {
    if (new URL(request.url).pathname === "/ignored") return new Response("no", { status: 401 });
    if (request.method === "GET") return new Response("next");
    const reader = request.body!.getReader();
    let read = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      read += r.value.byteLength;
      worst = Math.max(worst, pulled() - read);
      if (read < 8 * MiB) await sleep(5); // slow at first
    }
    return new Response(String(read));
  });
  // One connection: a request stalled behind an unread body would hold the next one.
  const client = new HttpClient(name, { maxConnections: 1 });
  try {
    const up = await within(
      60_000,
      client.fetch("/up", { method: "POST", body, duplex: "half" } as RequestInit),
    );
    assert.equal(await up.text(), String(total));
    assert.ok(
      worst < 20 * MiB,
      `the client ran ${(worst / MiB).toFixed(0)} MiB ahead of the handler`,
    );
    const ignored = await within(
      30_000,
      client.fetch("/ignored", { method: "POST", body: new Uint8Array(8 * MiB) }),
    );
    assert.equal(ignored.status, 401);
    await ignored.body?.cancel();
    const next = await within(5_000, client.fetch("/next"), "the request after an unread body");
    assert.equal(await next.text(), "next");
  } finally {
    await client.close();
    await within(10_000, server.shutdown({ timeout: 1_000 }), "shutdown()");
  }
});

test("shutdown({ timeout }) on a pipe closes a connection whose handler never returns", async () => {
  const name = uniqueName("http-bound");
  const server = serve(name, () => new Promise<Response>(() => {}));
  const client = new HttpClient(name, { keepAlive: false });
  try {
    const stuck = client.fetch("/stuck").catch((e: unknown) => e);
    await sleep(300);
    await within(5_000, server.shutdown({ timeout: 300 }), "shutdown({ timeout: 300 })");
    assert.ok((await within(5_000, stuck, "the stuck request")) instanceof Error);
  } finally {
    await client.close();
  }
});

test("Node for Windows' http client against serve() on a pipe", async () => {
  const name = uniqueName("http-node-client");
  const server = serve(name, async (request) => {
    return new Response(
      `${request.method} ${new URL(request.url).pathname} ${(await request.text()).length}`,
    );
  });
  const dir = mkdtempSync(join(tmpdir(), "winpipe-http-"));
  const result = join(dir, "r.json");
  const code = `const http = require("http"); const fs = require("fs");
    const get = (m, p, b) => new Promise((ok, no) => { const q = http.request({ socketPath: process.argv[1],
      method: m, path: p }, (s) => { let t = ""; s.on("data", (d) => t += d); s.on("end", () => ok(s.statusCode + " " + t)); });
      q.on("error", no); q.end(b); });
    (async () => fs.writeFileSync(process.argv[2], JSON.stringify([await get("GET", "/a"), await get("POST", "/b", "hello")])))()
      .catch((e) => fs.writeFileSync(process.argv[2], JSON.stringify(String(e))));`;
  try {
    const peer = spawn(node, ["-e", code, name, result], { stdio: "ignore" });
    await within(60_000, new Promise((r) => peer.on("exit", r)), "node's http client");
    assert.deepEqual(JSON.parse(readFileSync(result, "utf8")), ["200 GET /a 0", "200 POST /b 5"]);
  } finally {
    await within(10_000, server.shutdown(), "shutdown()");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("HttpClient against Node for Windows' http server on a pipe", async () => {
  const name = uniqueName("http-node-server");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-http-"));
  const ready = join(dir, "ready");
  const code =
    `require("http").createServer((q, s) => { let n = 0; q.on("data", (d) => n += d.length);
    q.on("end", () => s.end(q.method + " " + q.url + " " + n)); })
    .listen(process.argv[1], () => require("fs").writeFileSync(process.argv[2], "ready"));`;
  const peer = spawn(node, ["-e", code, name, ready], { stdio: "ignore" });
  try {
    for (let i = 0; !existsSync(ready); i++) {
      if (i > 1500) throw new Error("node's http server did not start");
      await sleep(20);
    }
    const client = new HttpClient(name);
    try {
      assert.equal(await (await within(30_000, client.fetch("/x"))).text(), "GET /x 0");
      const r = await client.fetch("/y", { method: "PUT", body: "abc" });
      assert.equal(await r.text(), "PUT /y 3");
    } finally {
      await client.close();
    }
  } finally {
    peer.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * What `conn` reads until the server ends it (a pipe has no half-close: the end is the server's
 * close), as text; then closes it. The server may cut the connection off mid-write.
 */
async function readToEnd(conn: PipeConnection): Promise<string> {
  conn.writer!.addEventListener("error", () => {}); // the server cut it off
  let out = "";
  try {
    for await (const chunk of conn.readable as unknown as AsyncIterable<Uint8Array>) {
      out += new TextDecoder().decode(chunk);
    }
  } catch {
    // the end, however it came
  }
  await conn.close().catch(() => {});
  return out;
}

test("slowloris on a pipe: a trickled head gets 408 at headersTimeout, an idle connection closes at keepAliveTimeout", async () => {
  const name = uniqueName("http-slow");
  const server = serve(name, () => new Response("fine"), {
    headersTimeout: 800,
    keepAliveTimeout: 400,
  });
  /** Sends `head` a byte every 50 ms; what came back once the server closed, and when. */
  const trickle = async (head: string) => {
    const conn = await connect(name);
    const start = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= head.length) return;
      try {
        conn.writer!.write(head[sent]);
        sent++;
      } catch {
        // A tick between the server's cut and the clearInterval below: readToEnd has closed
        // the writer, and a write after close() throws (by contract).
        clearInterval(timer);
      }
    }, 50);
    const out = await readToEnd(conn).finally(() => clearInterval(timer));
    return { out, ms: performance.now() - start, sent };
  };
  try {
    const head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(200) + "\r\n\r\n";
    const [slow, idle] = await within(
      20_000,
      Promise.all([trickle(head), trickle("")]),
      "the server cutting both off",
    );
    assert.match(slow.out, /^HTTP\/1\.1 408 /, JSON.stringify(slow.out));
    assert.ok(slow.sent < head.length, `cut off mid-head (${slow.sent} bytes sent)`);
    assert.ok(slow.ms >= 700, `cut off after ${slow.ms.toFixed(0)} ms (headersTimeout 800)`);
    assert.equal(idle.out, "");
    assert.ok(idle.ms >= 300, `idle closed after ${idle.ms.toFixed(0)} ms (keepAliveTimeout 400)`);
    const client = new HttpClient(name);
    assert.equal(await (await client.fetch("/")).text(), "fine", "and it still serves");
    await client.close();
  } finally {
    await within(10_000, server.shutdown(), "shutdown()");
  }
});

test("an answer with Connection: close ends the pipe's connection at once (HTTP/1.0, asked for, or the handler's)", async () => {
  // A pipe has no half-close: node:http's end of the answer alone left the connection open until
  // keepAliveTimeout, and an HTTP/1.0 client, whose body has no length, waited that long.
  const name = uniqueName("http-close");
  const server = serve(
    name,
    (request) =>
      new Response("hi", {
        headers: request.url.endsWith("/bye") ? { connection: "close" } : {},
      }),
  );
  try {
    for (
      const request of [
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // The handler's answer says close.
        "GET /bye HTTP/1.1\r\nHost: x\r\n\r\n",
      ]
    ) {
      const conn = await connect(name);
      const t0 = performance.now();
      conn.writer!.write(request);
      const out = await within(10_000, readToEnd(conn), `the end after ${JSON.stringify(request)}`);
      const took = performance.now() - t0;
      assert.equal(out.match(/HTTP\/1\.[01] 200/g)?.length, request.split("GET").length - 1, out);
      assert.ok(
        took < 2_500,
        `${JSON.stringify(request)}: the end came after ${Math.round(took)} ms`,
      );
    }
  } finally {
    await server.shutdown();
  }
});

test("malformed requests on a pipe get 400 and the connection's end, oversized heads 431; the server goes on", async () => {
  const name = uniqueName("http-bad");
  const server = serve(name, () => new Response("fine"), { maxHeaderSize: 4096 });
  /** Sends `bytes` and reads until the server ends the connection (a pipe has no half-close). */
  const raw = async (bytes: string) => {
    const conn = await connect(name);
    conn.writer!.write(bytes);
    return await readToEnd(conn);
  };
  try {
    const corpus = [
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
    ];
    for (const bad of corpus) {
      const out = await within(10_000, raw(bad), `the answer to ${JSON.stringify(bad)}`);
      assert.match(out, /^HTTP\/1\.1 400 /, `${JSON.stringify(bad)} got ${JSON.stringify(out)}`);
    }
    const big = await within(
      10_000,
      raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`),
      "the answer to an oversized head",
    );
    assert.match(big, /^HTTP\/1\.1 431 /);
    const client = new HttpClient(name);
    assert.equal(await (await client.fetch("/")).text(), "fine", "and it still serves");
    await client.close();
  } finally {
    await within(10_000, server.shutdown(), "shutdown()");
  }
});

test("1000 requests on a pipe leave the process's handles where they were", async () => {
  const name = uniqueName("http-handles");
  const server = serve(name, () => new Response("ok"));
  try {
    const round = async (n: number) => {
      const client = new HttpClient(name);
      for (let i = 0; i < n; i++) {
        assert.equal(await (await client.fetch(`/${i}`)).text(), "ok");
      }
      await client.close();
    };
    await round(20); // the runtime's own handles, made once
    const before = await settledSnapshot();
    await within(120_000, round(1000), "1000 requests");
    await assertHandlesBack(before, "after 1000 requests", 5_000);
  } finally {
    await within(10_000, server.shutdown(), "shutdown()");
  }
});
