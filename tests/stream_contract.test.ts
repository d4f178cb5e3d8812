// The stream contract against a peer that does not read: every way to end a writer or a reader
// settles within its documented bound, whatever is in flight. Fakes, on any OS; the fake kernel
// completes cancelled writes as Windows does (kernelCancel).
import assert from "node:assert/strict";
import { test } from "node:test";
import { chunkSize } from "../core/chunk.ts";
import { PipeError } from "../mod.ts";
import { fakeReader, fakeWriter, tick } from "./fake_channel.ts";
import { settles } from "./property.ts";

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return settles(p, ms, what);
}

/** A writer whose peer has stopped reading: writes complete only when cancelled. */
function stalledWriter(
  options: { highWaterMark?: number; writesInFlight?: number; closeTimeout?: number } = {},
) {
  const { channel, writer } = fakeWriter({ maxBlock: 64, highWaterMark: 100, ...options });
  channel.kernelCancel = true;
  channel.stalled = true;
  return { channel, writer };
}

test("writable.abort() settles at once while a write waits for a peer that does not read", async () => {
  const { channel, writer } = stalledWriter();
  const w = writer.writable.getWriter();
  // Above the high-water mark: the sink's write() waits for a drain that never comes.
  const writing = w.write(new Uint8Array(150)).catch((e) => e);
  await tick();
  assert.equal(channel.pending.length, 1, "a write is in flight");
  await within(w.abort(new Error("user gave up")), 1_000, "abort()");
  assert.ok((await writing) instanceof PipeError, "the waiting write rejects");
  assert.ok(channel.cancelCalls > 0, "CancelIoEx was called");
  assert.equal(channel.released, true);
});

test("pipeTo(dest, { signal }) with addAbortSignal ends when the signal aborts, with the peer not reading", async () => {
  const { channel, writer } = stalledWriter();
  const source = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(40)), // for ever
  });
  const ac = new AbortController();
  // The standard has pipeTo wait for the write in progress before it aborts the destination;
  // the writer, given the signal too, stops at once and that write rejects.
  const piping = source.pipeTo(writer.addAbortSignal(ac.signal).writable, { signal: ac.signal });
  await tick();
  await tick();
  ac.abort(new Error("enough"));
  await assert.rejects(within(piping, 1_000, "pipeTo()"), /enough/);
  assert.ok(channel.cancelCalls > 0, "CancelIoEx was called");
  await within(writer.stop(), 1_000, "stop()"); // the same stop(), settled
  assert.equal(channel.released, true);
});

test("the stream buffers at most highWaterMark plus one chunk, and sizes strings in UTF-8 bytes", async () => {
  const { writer } = stalledWriter({ highWaterMark: 100 });
  const w = writer.writable.getWriter();
  let offered = 0;
  // A producer that honours backpressure: it writes only when `ready` resolves.
  for (let i = 0; i < 100; i++) {
    const ready = await Promise.race([w.ready.then(() => true), tick().then(() => false)]);
    if (!ready) break;
    void w.write(new Uint8Array(10)).catch(() => {});
    offered += 10;
    await tick();
  }
  assert.ok(offered <= 100 + 10, `the producer was let write ${offered} bytes`);
  assert.ok(writer.bytesToWrite >= 100 - 10, `the writer holds ${writer.bytesToWrite}`);
  assert.equal(chunkSize("héllo €𝄞"), new TextEncoder().encode("héllo €𝄞").byteLength);
  assert.equal(chunkSize("\ud800x"), new TextEncoder().encode("\ud800x").byteLength);
  await within(writer.stop(), 1_000, "stop()");
});

test("with the default mark, the stream buffers at most two large chunks (2 MiB) plus one; abort settles", async () => {
  const MiB = 1024 * 1024;
  for (const size of [MiB, 4 * MiB]) {
    // The default mark, two writes in flight: the mark widens for large chunks, up to 2 MiB.
    const { channel, writer } = fakeWriter({ writesInFlight: 2 });
    channel.kernelCancel = true;
    channel.stalled = true;
    const w = writer.writable.getWriter();
    let offered = 0;
    for (let i = 0; i < 20; i++) {
      const ready = await Promise.race([w.ready.then(() => true), tick().then(() => false)]);
      if (!ready) break;
      void w.write(new Uint8Array(size)).catch(() => {});
      offered += size;
      await tick();
    }
    assert.ok(offered <= 2 * MiB + size, `${size} B chunks: the producer wrote ${offered} bytes`);
    await within(w.abort(new Error("the peer stopped reading")), 1_000, "abort()");
    assert.equal(channel.released, true);
  }
});

test("a failure with two writes in flight cancels the other one: close() and stop() settle", async () => {
  for (const end of ["close", "stop"] as const) {
    const { channel, writer } = stalledWriter({ writesInFlight: 2 });
    channel.writesInFlight = 2;
    writer.write(new Uint8Array(64));
    writer.write(new Uint8Array(64)); // a whole block queued: the second write goes too
    await tick();
    assert.equal(channel.pending.length, 2, `${end}: two writes in flight`);
    channel.completeNow(232); // the older fails; the newer is still in the kernel's hands
    assert.ok(channel.cancelCalls > 0, `${end}: the newer write was cancelled`);
    const p = end === "close" ? writer.close() : writer.stop();
    const r = await within(p.then(() => null, (e) => e), 1_000, `${end}()`);
    if (end === "close") assert.equal((r as PipeError).code, "ERROR_NO_DATA");
    assert.equal(channel.released, true, `${end}: released`);
    assert.equal(writer.error?.code, "ERROR_NO_DATA");
  }
});

test("a second write that fails to start: close() settles with the peer not reading", async () => {
  const { channel, writer } = stalledWriter({ writesInFlight: 2 });
  channel.writesInFlight = 2;
  writer.write(new Uint8Array(64));
  await tick();
  channel.failNextStart = 5;
  writer.write(new Uint8Array(64));
  await tick();
  assert.equal(writer.error?.code, "ERROR_ACCESS_DENIED");
  const r = await within(writer.close().then(() => null, (e) => e), 1_000, "close()");
  assert.equal((r as PipeError).code, "ERROR_ACCESS_DENIED");
  assert.equal(channel.released, true);
});

test("flushSync when GetOverlappedResultEx itself fails: the write stays cancellable", async () => {
  const { channel, writer } = stalledWriter();
  writer.write(new Uint8Array(10));
  channel.waitBehaviour = "waitFails";
  assert.throws(
    () => writer.flushSync(100),
    (e: PipeError) => e.syscall === "GetOverlappedResultEx",
  );
  assert.ok(channel.cancelCalls > 0, "the write the wait could not take was cancelled");
  const r = await within(writer.close().then(() => null, (e) => e), 1_000, "close()");
  assert.equal((r as PipeError).syscall, "GetOverlappedResultEx");
  assert.equal(channel.released, true);
});

test("close() is bounded: past its timeout the writes are stopped and it says so", async () => {
  const { channel, writer } = stalledWriter();
  writer.write(new Uint8Array(30));
  const t0 = performance.now();
  const e = await within(
    writer.close({ timeout: 50 }).then(() => null, (e) => e),
    1_500,
    "close()",
  );
  assert.ok(e instanceof PipeError);
  assert.equal(e.code, "ERROR_TIMEOUT");
  assert.match(e.message, /30 bytes not written/);
  assert.ok(performance.now() - t0 >= 45, "not before its timeout");
  assert.equal(writer.error, e, "the writer keeps it");
  assert.equal(writer.bytesToWrite, 30, "the count not written");
  assert.equal(channel.released, true);
  // The option on the writer is the default for close() and `await using`.
  const other = fakeWriter({ closeTimeout: 20 });
  other.channel.kernelCancel = true;
  other.writer.write(new Uint8Array(5));
  await assert.rejects(within(other.writer.close(), 1_000, "close()"), /ERROR_TIMEOUT/);
  assert.throws(() => fakeWriter({ closeTimeout: -1 }), /closeTimeout must be a number/);
});

test("a later close() with a shorter timeout shortens the wait; a longer one does not lengthen it", async () => {
  // A writable closed by pipeTo (default bound) and then closed again with a bound of its own.
  const { writer } = stalledWriter({ closeTimeout: 60_000 });
  writer.write(new Uint8Array(30));
  const first = writer.close().then(() => null, (e) => e);
  const second = writer.close({ timeout: 30 });
  assert.equal(second, writer.close({ timeout: 90_000 }), "one promise for every call");
  const e = await within(first, 1_500, "close()");
  assert.equal((e as PipeError).code, "ERROR_TIMEOUT");
  assert.match((e as PipeError).message, /gave up after 30 ms/);
  await assert.rejects(second, /ERROR_TIMEOUT/);
});

test("stop() on a failed writer, with a write the failure could not cancel, is bounded", async () => {
  const { channel, writer } = stalledWriter({ writesInFlight: 2 });
  channel.writesInFlight = 2;
  channel.owned = false; // the caller's handle: nothing ends the write but the caller
  channel.cancelResult = 6; // and CancelIoEx fails
  writer.write(new Uint8Array(64));
  writer.write(new Uint8Array(64));
  await tick();
  channel.completeNow(109);
  const t0 = performance.now();
  const e = await within(writer.stop().then(() => null, (e) => e), 3_000, "stop()");
  assert.equal((e as PipeError).code, "ERROR_INVALID_HANDLE", "the CancelIoEx failure");
  assert.ok(performance.now() - t0 < 2_900);
  channel.completeNow(995); // the caller closed its handle at last
});

test("a readable asked for after cancel() is an ended stream", async () => {
  const { reader } = fakeReader();
  await reader.cancel();
  const r = reader.readable.getReader();
  assert.deepEqual(await within(r.read(), 1_000, "read()"), { done: true, value: undefined });
});
