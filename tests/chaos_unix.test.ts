// The chaos run on Unix sockets, shorter than the Windows one (tests/win/chaos.test.ts): for a
// bounded time, clients of seven kinds connect, write, read echoes, stop, drop and die mid-stream
// against one server that checks every byte (tests/peers/chaos_unix_server.ts, its own process
// of this runtime). Afterwards its descriptors must be back at the baseline, and it must end by
// itself: nothing left open.
//
// WINPIPE_CHAOS_SECONDS (default 10 here) sets the duration, WINPIPE_CHAOS_SEED (default 1) the
// seed; a failure names both.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { isWindows } from "../ffi/runtime.ts";
import { connect } from "../mod.ts";
import { HEADER, message, pattern, STOP } from "./peers/chaos_unix_protocol.ts";

const skip = isWindows()
  ? "this is Windows: tests/win/chaos.test.ts is the chaos run there"
  : false;
const SECONDS = Number(process.env.WINPIPE_CHAOS_SECONDS || 10);
const SEED = Number(process.env.WINPIPE_CHAOS_SEED || 1) >>> 0;
const KINDS = ["full", "echo", "stop", "drop", "node", "killed", "empty"] as const;
type Kind = typeof KINDS[number];
/** Kinds whose every byte must reach the server. */
const WHOLE = new Set<Kind>(["full", "echo", "node"]);
const server = fileURLToPath(new URL("./peers/chaos_unix_server.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prng(seed: number): (n: number) => number {
  let x = seed || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** Writes `data` in random chunks, honouring backpressure. */
async function writeChunks(
  w: NonNullable<Awaited<ReturnType<typeof connect>>["writer"]>,
  data: Uint8Array,
  rand: (n: number) => number,
  upTo = data.byteLength,
): Promise<void> {
  for (let o = 0; o < upTo;) {
    const n = Math.min(1 + rand(65536), upTo - o);
    if (!w.write(data.subarray(o, o + n))) {
      // drain, or the writer's end (stopped, or its peer gone): write() then throws.
      await new Promise((r) => {
        for (const type of ["drain", "close", "error"]) w.addEventListener(type, r, { once: true });
      });
    }
    o += n;
  }
}

/** Where each running client is, for the message when one does not finish. */
const stages = new Map<number, string>();

/** A client, bounded: one that has not finished after CLIENT_MS is a failure naming its stage. */
const CLIENT_MS = 30_000;
function bounded(kind: Kind, id: number, path: string, rand: (n: number) => number) {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    client(kind, id, path, rand).finally(() => clearTimeout(timer)),
    new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`not done after ${CLIENT_MS} ms, at: ${stages.get(id)}`)),
        CLIENT_MS,
      );
    }),
  ]).finally(() => stages.delete(id));
}

async function client(kind: Kind, id: number, path: string, rand: (n: number) => number) {
  const at = (stage: string) => stages.set(id, stage);
  at("connect");
  const length = rand(512 * 1024);
  if (kind === "empty") {
    const c = await connect(path);
    await c.close();
    return;
  }
  if (kind === "node") {
    // A peer that is not winpipe: node:net in this runtime.
    await new Promise<void>((resolve, reject) => {
      const s = createConnection(path, () => s.end(message(id, length, false)));
      s.on("error", reject);
      s.on("close", () => resolve());
      s.resume();
    });
    return;
  }
  if (kind === "killed") {
    // Node itself, killed mid-stream: it writes the header and then the pattern, 4 KiB a tick.
    const file = `${path}.${id}`;
    fs.writeFileSync(file, message(id, length, false));
    const code = `const s=require("net").createConnection(process.argv[1]);`
      + `const m=require("fs").readFileSync(process.argv[2]);let o=0;`
      + `const t=setInterval(()=>{s.write(m.subarray(o,o+=4096));if(o>=m.length)clearInterval(t)},1);`;
    const child = spawn("node", ["-e", code, path, file], { stdio: "ignore" });
    const ended = new Promise((r) => (child.once("exit", r), child.once("error", r)));
    await sleep(20 + rand(200));
    child.kill("SIGKILL");
    at("the killed child's exit");
    await ended;
    fs.rmSync(file, { force: true });
    return;
  }
  const echo = kind === "echo" || kind === "drop";
  const data = message(id, length, echo);
  const c = await connect(path);
  const w = c.writer!;
  at("writing");
  if (kind === "stop") {
    await writeChunks(w, data, rand, HEADER + rand(length + 1));
    await w.stop().catch(() => {});
    await c.close().catch(() => {});
    return;
  }
  let echoed: Promise<void> = Promise.resolve();
  if (echo) {
    const want = kind === "drop" ? rand(length + 1) : length;
    echoed = (async () => {
      const next = pattern(id);
      const buf = new Uint8Array(64 * 1024);
      for (let got = 0; got < want;) {
        const n = await c.read(buf);
        if (n === null) throw new Error(`echo ${id}: ended after ${got} of ${want} bytes`);
        for (let i = 0; i < n; i++) {
          if (buf[i] !== next()) throw new Error(`echo ${id}: byte ${got + i} is wrong`);
        }
        got += n;
      }
    })();
  }
  if (kind === "drop") {
    // Reads part of the echo, then leaves without reading the rest or finishing its writes.
    const writing = writeChunks(w, data, rand).catch(() => {});
    at("reading part of the echo");
    await echoed;
    at("stop");
    await w.stop().catch(() => {});
    at("close");
    await c.close().catch(() => {});
    at("the writes' end");
    await writing;
    return;
  }
  await writeChunks(w, data, rand);
  at("reading the echo");
  await echoed;
  at("close");
  await c.close();
}

test(`chaos on Unix sockets: ${SECONDS} s of clients that write, echo, stop, drop and die`, {
  skip,
  timeout: (SECONDS + 90) * 1000,
}, async () => {
  const dir = fs.mkdtempSync(join(process.platform === "darwin" ? "/tmp" : tmpdir(), "wp-chaos-"));
  const path = join(dir, "s");
  const result = join(dir, "result.json");
  const again = `WINPIPE_CHAOS_SEED=${SEED} WINPIPE_CHAOS_SECONDS=${SECONDS}`;
  const child = spawn(
    process.execPath,
    [...("Deno" in globalThis ? ["run", "-A"] : []), server, path, result],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  let exited = false;
  const exit = new Promise<number | null>((r) => child.once("exit", (c) => (exited = true, r(c))));
  try {
    for (let i = 0; !fs.existsSync(`${result}.ready`); i++) {
      if (i === 0) {
        // The warm-up connection: the server takes its baseline once it has gone.
        await sleep(200);
        await (await connect(path, { wait: true, timeout: 20_000 })).close();
      }
      if (exited || i > 300) assert.fail(`the chaos server did not get ready (${again})`);
      await sleep(50);
    }
    const rand = prng(SEED);
    const kinds = new Map<number, Kind>();
    const errors: string[] = [];
    const running = new Set<Promise<void>>();
    const deadline = Date.now() + SECONDS * 1000;
    let id = 0;
    while (Date.now() < deadline) {
      while (running.size < 6) {
        const kind = KINDS[rand(KINDS.length)];
        const me = ++id;
        kinds.set(me, kind);
        const p: Promise<void> = bounded(kind, me, path, prng(SEED ^ (me * 7919)))
          .catch((e) => void errors.push(`${kind} client ${me}: ${e}`))
          .finally(() => running.delete(p));
        running.add(p);
      }
      await Promise.race(running);
    }
    await Promise.all(running);
    if (errors.length) console.log(`chaos clients that failed: ${errors.join("; ")}`);
    // Stop: the server closes its listener, finishes, writes its result and must end by itself.
    const stop = await connect(path);
    stop.writer!.write(message(STOP, 0, false));
    await stop.close();
    const stopped = performance.now();
    // Its close() of a connection waits for the flush at most 30 s (closeTimeout): a connection
    // whose peer has gone unnoticed shows as a server that takes that long to end.
    const code = await Promise.race([exit, sleep(15_000).then(() => "still running")]);
    const exitMs = performance.now() - stopped;
    if (code === "still running") child.kill();
    assert.equal(code, 0, `the chaos server did not end by itself within 15 s (${again})`);
    const r = JSON.parse(fs.readFileSync(result, "utf8"));
    const counts: Record<string, number> = {};
    for (const k of kinds.values()) counts[k] = (counts[k] ?? 0) + 1;
    console.log(
      `chaos ${r.runtime}, seed ${SEED}, ${SECONDS} s: ${kinds.size} clients ${
        JSON.stringify(counts)
      }, ${r.connections} connections served; descriptors ${r.baseline} -> ${r.end} in all, ${
        r.left ?? "(not counted on this OS)"
      } left of the server's sockets; it ended by itself ${
        (exitMs / 1000).toFixed(1)
      } s after the stop`,
    );
    assert.deepEqual(errors, [], `client failures (${again})`);
    assert.deepEqual(r.failures, [], `server failures (${again})`);
    assert.deepEqual(KINDS.filter((k) => !counts[k]), [], `kinds that never ran (${again})`);
    for (const [n, kind] of kinds) {
      if (!WHOLE.has(kind)) continue;
      assert.ok(
        r.seen[n]?.complete,
        `${kind} client ${n}: the server got ${r.seen[n]?.bytes} bytes`,
      );
    }
  } finally {
    if (!exited) child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
