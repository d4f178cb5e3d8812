// PipeWriter against real kernel32: natively on Windows, under Wine on Linux (scripts/test.mjs).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { native } from "../../ffi/runtime.ts";
import { PipeError, type PipeErrorEvent, PipeWriter } from "../../mod.ts";
import { securityAttributes } from "../../windows/security.ts";
import { assertHandlesBack, settledSnapshot } from "./handles.ts";
import { Pattern, ServerEnd, sleep, uniqueName, within } from "./server_end.ts";

const MiB = 1024 * 1024;
const pattern = new Pattern(7);

/** A server instance and a writer connected to it. */
async function pair(tag: string, options: { inBufferSize?: number; highWaterMark?: number } = {}) {
  const name = uniqueName(tag);
  const server = ServerEnd.create(name, { inBufferSize: options.inBufferSize });
  const connected = server.connect();
  const writer = await PipeWriter.open(name, { highWaterMark: options.highWaterMark });
  await connected;
  return { name, server, writer };
}

function drained(w: PipeWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      w.removeEventListener("drain", done);
      w.removeEventListener("error", done);
      w.error ? reject(w.error) : resolve();
    };
    w.addEventListener("drain", done);
    w.addEventListener("error", done);
  });
}

test("64 MiB in random chunks of 1 B to 1 MiB arrive byte-exact", async () => {
  const { server, writer } = await pair("bulk");
  const verify = pattern.verifier();
  const reading = server.drain((b) => verify.check(b));
  const total = 64 * MiB;
  let x = 12345;
  let position = 0;
  const sizes = new Set<number>();
  while (position < total) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    // Log-uniform sizes, so 1 B chunks and 1 MiB chunks both occur often.
    const size = Math.min(total - position, Math.max(1, Math.floor(2 ** ((x % 2001) / 100))));
    sizes.add(size < 16 ? 1 : size >= MiB / 2 ? MiB : 0);
    if (!writer.write(pattern.at(position, size))) await drained(writer);
    position += size;
  }
  await writer.close();
  const received = await within(120_000, reading, "reading 64 MiB");
  assert.equal(received, total);
  assert.equal(verify.position, total);
  assert.ok(sizes.has(1) && sizes.has(MiB), "both tiny and 1 MiB chunks were written");
  await server.close();
});

test("Node for Windows' net server (an independent peer) receives exactly what was written", async () => {
  const name = uniqueName("node");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-"));
  const resultFile = join(dir, "result.json");
  const nodeExe = process.env.WINPIPE_NODE || "node";
  const peer = spawn(nodeExe, [join("tests", "win", "peers", "node_sink.cjs"), name, resultFile], {
    stdio: "ignore",
  });
  const exited = new Promise<number | null>((r) => peer.on("exit", (code) => r(code)));
  try {
    const writer = await PipeWriter.open(name, { wait: true, timeout: 30_000 });
    const hash = createHash("sha256");
    let written = 0;
    for (let i = 0; written < 16 * MiB; i++) {
      const chunk = pattern.at(written, 1 + ((i * 7919) % (256 * 1024)));
      hash.update(chunk);
      written += chunk.byteLength;
      if (!writer.write(chunk)) await drained(writer);
    }
    await writer.close();
    assert.equal(await within(60_000, exited, "node peer"), 0);
    const result = JSON.parse(readFileSync(resultFile, "utf8"));
    assert.equal(result.bytes, written);
    assert.equal(result.sha256, hash.digest("hex"));
  } finally {
    peer.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a slow reader with a small pipe buffer: the queue stays bounded and nothing is lost", async () => {
  const hwm = 64 * 1024;
  const chunk = 16 * 1024;
  const { server, writer } = await pair("slow", { inBufferSize: 4096, highWaterMark: hwm });
  const verify = pattern.verifier();
  let reads = 0;
  const reading = server.drain(async (b) => {
    verify.check(b);
    if (++reads % 8 === 0) await sleep(1);
  });
  let maxQueued = 0;
  let refused = 0;
  const total = 4 * MiB;
  for (let p = 0; p < total; p += chunk) {
    if (!writer.write(pattern.at(p, chunk))) {
      refused++;
      await drained(writer);
    }
    maxQueued = Math.max(maxQueued, writer.bytesToWrite);
  }
  await writer.close();
  assert.equal(await within(60_000, reading), total);
  assert.ok(refused > 0, "write() applied backpressure");
  assert.ok(maxQueued <= hwm + chunk, `queue grew to ${maxQueued}`);
  await server.close();
});

test("the peer disconnecting mid-stream: exactly one error (109/232/233), and no hang", async () => {
  const { server, writer } = await pair("gone", { inBufferSize: 4096 });
  const errors: PipeError[] = [];
  let closes = 0;
  writer.addEventListener("error", (e) => errors.push((e as PipeErrorEvent).error));
  writer.addEventListener("close", () => closes++);
  const writing = (async () => {
    for (let p = 0; !writer.error; p += MiB) {
      if (!writer.write(pattern.at(p, MiB))) await drained(writer).catch(() => {});
    }
  })();
  let got = 0;
  while (got < 100 * 1024) got += (await server.read())!.byteLength;
  // Gone while writes are queued and one is in flight.
  assert.ok(writer.bytesToWrite > 0);
  await server.close();
  await within(10_000, writing, "writing until the error");
  await assert.rejects(writer.flush(), (e) => e === writer.error);
  await assert.rejects(within(10_000, writer.close()), (e) => e === writer.error);
  await sleep(50);
  assert.equal(errors.length, 1);
  assert.ok([109, 232, 233].includes(errors[0].errno), `code ${errors[0].errno}`);
  assert.equal(errors[0].peerGone, true);
  assert.equal(closes, 1);
  assert.ok(writer.bytesToWrite > 0, "the unwritten count is kept");
});

test("stop() with a write pending, 1000 times: no crash, handles back to baseline", async () => {
  const round = async () => {
    const { server, writer } = await pair("stop", { inBufferSize: 1024 });
    writer.write(pattern.at(0, 256 * 1024)); // far more than the buffer: stays pending
    writer.write(pattern.at(0, 1000)); // queued behind it
    assert.ok(writer.bytesToWrite > 0);
    await within(5_000, writer.stop(), "stop()");
    assert.equal(writer.bytesToWrite, 0);
    await server.close();
  };
  for (let i = 0; i < 20; i++) await round(); // warm the thread pool up
  const baseline = await settledSnapshot();
  for (let i = 0; i < 1000; i++) await round();
  await assertHandlesBack(baseline, "after 1000 stops");
});

test("flushSync: false at the deadline while the reader is away, true once it can finish", async () => {
  const { server, writer } = await pair("sync", { inBufferSize: 1024 });
  writer.write(pattern.at(0, 256 * 1024));
  const t0 = performance.now();
  assert.equal(writer.flushSync(200), false);
  const waited = performance.now() - t0;
  assert.ok(waited >= 150, `returned after ${waited.toFixed(0)} ms, before the deadline`);
  assert.ok(writer.bytesToWrite > 0);
  const verify = pattern.verifier();
  const reading = server.drain((b) => verify.check(b));
  await within(10_000, writer.flush());
  writer.write(pattern.at(256 * 1024, 100)); // fits the pipe buffer: completes at once
  assert.equal(writer.flushSync(5_000), true);
  assert.equal(writer.bytesToWrite, 0);
  await writer.close();
  assert.equal(await within(10_000, reading), 256 * 1024 + 100);
  await server.close();
});

test("write after close, and after stop, throws a PipeError", async () => {
  const { server, writer } = await pair("after");
  await writer.close();
  assert.throws(() => writer.write("x"), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.match(e.message, /after the writer was closed/);
    return true;
  });
  const second = await pair("after2");
  await second.writer.stop();
  assert.throws(() => second.writer.write("x"), /after the writer was stopped/);
  await Promise.all([server.close(), second.server.close()]);
});

test("every bad input is a TypeError and loses nothing queued", async () => {
  const { server, writer } = await pair("bad");
  writer.write("ok");
  for (const bad of [1, null, undefined, {}, [1], true]) {
    assert.throws(() => writer.write(bad as never), TypeError);
  }
  const detached = new ArrayBuffer(4);
  structuredClone(detached, { transfer: [detached] });
  assert.throws(() => writer.write(detached), TypeError);
  assert.equal(writer.write(new Uint8Array(0)), true);
  assert.throws(() => writer.flushSync(-1), TypeError);
  assert.throws(() => PipeWriter.fromHandle(-1n), TypeError);
  assert.throws(() => PipeWriter.fromHandle(0n), TypeError);
  assert.throws(() => PipeWriter.fromHandle(3 as never), TypeError);
  await assert.rejects(PipeWriter.open(String.raw`\\.\pipe\x`, { timeout: -1 }), TypeError);
  await assert.rejects(PipeWriter.open(String.raw`\\.\pipe\x`, { highWaterMark: 0 }), TypeError);
  await assert.rejects(PipeWriter.open(42 as never), TypeError);
  await writer.close();
  const got = await server.read();
  assert.equal(new TextDecoder().decode(got!), "ok");
  await server.close();
});

test("fromHandle refuses a handle that is not a pipe, and releases nothing it does not own", () => {
  const k = native().kernel32;
  const event = k.CreateEventW(securityAttributes(), 1, 0, null);
  assert.notEqual(event, 0n);
  try {
    assert.throws(() => PipeWriter.fromHandle(event, { owned: false }), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.syscall, "GetFileType");
      return true;
    });
    assert.equal(k.WaitForSingleObject(event, 0), 0x102, "the event handle is still open");
  } finally {
    k.CloseHandle(event);
  }
});

test("a failed construction releases everything it made, including an owned handle", async () => {
  const k = native().kernel32;
  const before = await settledSnapshot();
  for (let i = 0; i < 50; i++) {
    // An event is a valid handle but not a pipe: fromHandle must fail and, owning it, close it.
    const event = k.CreateEventW(securityAttributes(), 1, 0, null);
    assert.throws(() => PipeWriter.fromHandle(event, { owned: true }), PipeError);
  }
  await assertHandlesBack(before, "after 50 failed constructions");
});

test("handles opened by name are not inheritable (explicit SECURITY_ATTRIBUTES)", async () => {
  const k = native().kernel32;
  const { openPipeHandle } = await import("../../windows/open.ts");
  const { openSettings } = await import("../../core/options.ts");
  const name = uniqueName("inherit");
  const server = ServerEnd.create(name);
  const connected = server.connect();
  const handle = await openPipeHandle(name, "write", openSettings({}, "test"));
  await connected;
  const flags = new Uint32Array(1);
  assert.equal(k.GetHandleInformation(handle, flags), 1);
  assert.equal(flags[0] & 1, 0, "HANDLE_FLAG_INHERIT is clear");
  k.CloseHandle(handle);
  await server.close();
});

test("fromHandle with owned: false leaves the handle open; owned: true closes it", async () => {
  const k = native().kernel32;
  const { openPipeHandle } = await import("../../windows/open.ts");
  const { openSettings } = await import("../../core/options.ts");
  const connectTo = async (tag: string) => {
    const name = uniqueName(tag);
    const server = ServerEnd.create(name);
    const connected = server.connect();
    const handle = await openPipeHandle(name, "write", openSettings({}, "test"));
    await connected;
    return { server, handle };
  };
  const borrowed = await connectTo("borrowed");
  const w1 = PipeWriter.fromHandle(borrowed.handle, { owned: false });
  w1.write("abc");
  await w1.close();
  assert.equal(k.GetFileType(borrowed.handle), 3, "still a live pipe handle after close()");
  assert.equal(k.CloseHandle(borrowed.handle), 1, "the caller can still close it");
  assert.equal(new TextDecoder().decode((await borrowed.server.read())!), "abc");
  await borrowed.server.close();

  const before = await settledSnapshot();
  const owned = await connectTo("owned");
  const w2 = PipeWriter.fromHandle(owned.handle, { owned: true });
  w2.write("def");
  await w2.close();
  assert.equal(new TextDecoder().decode((await owned.server.read())!), "def");
  await owned.server.close();
  await assertHandlesBack(before, "the owned handle was closed with the writer");
});

test("a handle can be bound to the thread pool once: a second fromHandle says so", async () => {
  const { name, server, writer } = await pair("twice");
  const { openPipeHandle } = await import("../../windows/open.ts");
  const { openSettings } = await import("../../core/options.ts");
  await writer.close();
  await server.close();
  const s2 = ServerEnd.create(name);
  const connected = s2.connect();
  const handle = await openPipeHandle(name, "write", openSettings({}, "test"));
  await connected;
  const first = PipeWriter.fromHandle(handle, { owned: false });
  assert.throws(() => PipeWriter.fromHandle(handle, { owned: false }), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.syscall, "CreateThreadpoolIo");
    assert.match(e.message, /already bound/);
    return true;
  });
  await first.close();
  native().kernel32.CloseHandle(handle);
  await s2.close();
});

test("open: a missing pipe fails at once with ERROR_FILE_NOT_FOUND", async () => {
  const t0 = performance.now();
  await assert.rejects(PipeWriter.open(uniqueName("missing"), { timeout: 3_000 }), {
    name: "PipeError",
    code: "ERROR_FILE_NOT_FOUND",
    syscall: "CreateFileW",
  });
  assert.ok(performance.now() - t0 < 1_500, "did not wait for the timeout");
});

test("open: a busy pipe is retried until the timeout, then ERROR_PIPE_BUSY", async () => {
  const { name, server, writer } = await pair("busy");
  const t0 = performance.now();
  await assert.rejects(PipeWriter.open(name, { timeout: 300 }), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.code, "ERROR_PIPE_BUSY");
    assert.match(e.message, /gave up after 300 ms: every instance of the pipe was busy/);
    return true;
  });
  assert.ok(performance.now() - t0 >= 250);
  await writer.close();
  await server.close();
});

test("open: a busy pipe succeeds when an instance frees up before the timeout", async () => {
  const name = uniqueName("busy2");
  const first = ServerEnd.create(name, { maxInstances: 2 });
  const c1 = first.connect();
  const w1 = await PipeWriter.open(name);
  await c1;
  const opening = PipeWriter.open(name, { timeout: 5_000 });
  await sleep(100);
  const second = ServerEnd.create(name, { maxInstances: 2 });
  const c2 = second.connect();
  const w2 = await within(5_000, opening);
  await c2;
  w2.write("second");
  await w2.close();
  assert.equal(new TextDecoder().decode((await second.read())!), "second");
  await w1.close();
  await Promise.all([first.close(), second.close()]);
});

test("open: wait: true waits for the server to appear", async () => {
  const name = uniqueName("wait");
  let server: ServerEnd | undefined;
  setTimeout(() => {
    server = ServerEnd.create(name);
    void server.connect();
  }, 100);
  const w = await within(5_000, PipeWriter.open(name, { wait: true, timeout: 5_000 }));
  await w.close();
  await server!.close();
});

test("open: an aborted signal abandons the retries", async () => {
  const ac = new AbortController();
  const p = PipeWriter.open(uniqueName("abort"), { wait: true, signal: ac.signal });
  setTimeout(() => ac.abort(new Error("changed my mind")), 50);
  await assert.rejects(within(5_000, p), /changed my mind/);
});

test("open: a remote name is refused before any system call", async () => {
  await assert.rejects(PipeWriter.open(String.raw`\\fileserver\pipe\x`), {
    name: "TypeError",
    message: /allowRemote/,
  });
});

test("re-entrant handlers on a real pipe: writing from byteswritten keeps order", async () => {
  const { server, writer } = await pair("reentrant");
  const verify = pattern.verifier();
  const reading = server.drain((b) => verify.check(b));
  let p = 0;
  writer.addEventListener("byteswritten", () => {
    if (p < 2 * MiB) {
      writer.write(pattern.at(p, 10_000));
      p += 10_000;
    }
  });
  writer.write(pattern.at(0, 10_000));
  p = 10_000;
  while (p < 2 * MiB) await writer.flush();
  await writer.close();
  assert.equal(await within(10_000, reading), p);
  await server.close();
});

test("writable: pipeTo from a ReadableStream delivers every byte", async () => {
  const { server, writer } = await pair("stream");
  const verify = pattern.verifier();
  const reading = server.drain((b) => verify.check(b));
  let p = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (p >= 8 * MiB) return c.close();
      const n = 1 + ((p * 31) % 100_000);
      c.enqueue(pattern.at(p, n).slice());
      p += n;
    },
  });
  await source.pipeTo(writer.writable);
  assert.equal(await within(20_000, reading), p);
  await server.close();
});

test("opening and closing 200 writers leaves the handle count where it was", async () => {
  const once = async () => {
    const { server, writer } = await pair("count");
    writer.write("x");
    await writer.close();
    await server.close();
  };
  for (let i = 0; i < 10; i++) await once();
  const baseline = await settledSnapshot();
  for (let i = 0; i < 200; i++) await once();
  await assertHandlesBack(baseline, "after 200 writers");
});
