// The completion path against real kernel32: what completes at once is handled inline and queues
// no completion (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS), what pends still arrives through the pool,
// and a caller's handle keeps its mode. Windows and Wine (10) behave alike here; the research
// behind each case is in windows/completion/mod.ts and docs/design.md.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openSettings } from "../../core/options.ts";
import { native } from "../../ffi/runtime.ts";
import { connect, listen, PipeReader, PipeWriter } from "../../mod.ts";
import { type IoResult, OverlappedPipe, strayCompletions } from "../../windows/completion/mod.ts";
import { openPipeHandle } from "../../windows/open.ts";
import { Pattern, ServerEnd, sleep, uniqueName, within } from "./server_end.ts";

const KiB = 1024;

/** A client handle (owned by the test) to a fresh server instance with a big inbound buffer. */
async function client(tag: string, inBufferSize = 4 * 1024 * KiB) {
  const name = uniqueName(tag);
  const server = ServerEnd.create(name, { inBufferSize });
  const connected = server.connect();
  const handle = await openPipeHandle(name, "write", openSettings({}, "test"));
  await connected;
  return { name, server, handle };
}

/** Starts a 1 KiB WriteFile on `pipe`: "now" when it completed at once, else its completion. */
function write1k(pipe: OverlappedPipe, data: Uint8Array): "now" | Promise<IoResult> {
  const k = native().kernel32;
  const addr = native().addressOf(data);
  let later!: (r: IoResult) => void;
  const completion = new Promise<IoResult>((r) => (later = r));
  const r = pipe.start(
    "WriteFile",
    (h, ov) => k.WriteFile(h, addr, data.byteLength, null, ov),
    data,
    (result) => later(result),
  );
  if ("address" in r) return completion;
  assert.equal(r.error, 0, `WriteFile failed: ${r.error}`);
  assert.equal((r as IoResult).bytes, data.byteLength, "the count comes from InternalHigh");
  return "now";
}

test("an owned handle: writes that fit complete at once, and no completion is queued for them", async () => {
  const { server, handle } = await client("inline");
  const reading = server.drain();
  const strays = strayCompletions();
  const pipe = OverlappedPipe.bind(handle, { owned: true });
  assert.equal(pipe.inline, true, "SetFileCompletionNotificationModes took");
  const data = new Uint8Array(new ArrayBuffer(KiB)).fill(7);
  let now = 0;
  for (let i = 0; i < 500; i++) {
    const r = write1k(pipe, data);
    if (r === "now") now++;
    else assert.equal((await within(5_000, r, "a pending write")).error, 0);
  }
  assert.ok(now > 250, `${now} of 500 writes completed at once`);
  assert.equal(pipe.pendingOperations, 0, "nothing owed");
  await sleep(200); // a completion queued by mistake would arrive meanwhile
  assert.equal(strayCompletions(), strays, "no completion for a write that completed at once");
  await within(5_000, pipe.release(), "release");
  assert.equal(await within(5_000, reading, "the server's drain"), 500 * KiB);
  await server.close();
});

test("a handle the caller owns keeps its completion mode: every completion comes from the pool", async () => {
  const { server, handle } = await client("not-owned");
  const reading = server.drain();
  const pipe = OverlappedPipe.bind(handle, { owned: false });
  assert.equal(pipe.inline, false);
  const data = new Uint8Array(new ArrayBuffer(KiB));
  for (let i = 0; i < 20; i++) {
    const r = write1k(pipe, data);
    assert.notEqual(r, "now", "without the mode, even a write that fits is queued");
    assert.equal((await within(5_000, r as Promise<IoResult>)).error, 0);
  }
  await within(5_000, pipe.release(), "release");
  native().kernel32.CloseHandle(handle);
  assert.equal(await within(5_000, reading), 20 * KiB);
  await server.close();
});

test("a writer through a pipe whose buffer holds everything: 16 MiB in 1000-byte writes, byte-exact", async () => {
  const name = uniqueName("inline-writer");
  const server = ServerEnd.create(name, { inBufferSize: 1024 * KiB }, 1024 * KiB);
  const connected = server.connect();
  const writer = await PipeWriter.open(name);
  await connected;
  const pattern = new Pattern(21);
  const verifier = pattern.verifier();
  const reading = server.drain((b) => verifier.check(b));
  const strays = strayCompletions();
  const total = 16 * 1024 * KiB;
  for (let sent = 0; sent < total;) {
    const n = Math.min(1000, total - sent);
    const ok = writer.write(pattern.at(sent, n));
    sent += n;
    if (!ok) await new Promise((r) => writer.addEventListener("drain", r, { once: true }));
  }
  await within(30_000, writer.close(), "close");
  assert.equal(await within(30_000, reading), total);
  assert.equal(strayCompletions(), strays);
  await server.close();
});

test("BYOB reads go straight into the consumer's views; message reads that complete at once in parts are whole", async () => {
  const name = uniqueName("byob");
  const server = listen(name, { messageMode: true });
  const accepted = server.accept();
  const client = await connect(name, { messageMode: true, readSize: 4 });
  const conn = (await accepted)!;
  // Bytes first, so that every read below completes at once (with ERROR_MORE_DATA for parts).
  const w = conn.writable.getWriter();
  await w.write(new TextEncoder().encode("a message longer than four bytes"));
  await w.write(new TextEncoder().encode("second"));
  await sleep(50);
  const r = client.readable.getReader();
  assert.equal(
    new TextDecoder().decode((await r.read()).value),
    "a message longer than four bytes",
  );
  assert.equal(new TextDecoder().decode((await r.read()).value), "second");
  r.releaseLock();
  w.releaseLock();
  await Promise.all([client.close(), conn.close()]);
  await server.close();

  // Byte mode, BYOB.
  const name2 = uniqueName("byob2");
  const server2 = listen(name2);
  const accepted2 = server2.accept();
  const client2 = await connect(name2);
  const conn2 = (await accepted2)!;
  const writer = conn2.writable.getWriter();
  await writer.write(new Uint8Array(100_000).fill(3));
  const byob = client2.readable.getReader({ mode: "byob" });
  let got = 0;
  while (got < 100_000) {
    const { value } = await within(5_000, byob.read(new Uint8Array(30_000)));
    assert.ok(value!.every((b) => b === 3));
    got += value!.byteLength;
  }
  assert.equal(got, 100_000);
  byob.releaseLock();
  writer.releaseLock();
  await Promise.all([client2.close(), conn2.close()]);
  await server2.close();
});

test("a PipeReader over a caller's handle (not owned) still reads everything through the pool", async () => {
  const name = uniqueName("reader-not-owned");
  const server = listen(name);
  const accepted = server.accept();
  const handle = await openPipeHandle(name, "read", openSettings({}, "test"));
  const conn = (await accepted)!;
  const reader = PipeReader.fromHandle(handle);
  const w = conn.writable.getWriter();
  void w.write(new Uint8Array(200_000).fill(9));
  let got = 0;
  const r = reader.readable.getReader();
  while (got < 200_000) got += (await within(5_000, r.read())).value!.byteLength;
  assert.equal(got, 200_000);
  r.releaseLock();
  w.releaseLock();
  await reader.cancel();
  await conn.close();
  native().kernel32.CloseHandle(handle);
  await server.close();
});

test("addressOf gives each view's own address, for every view of a buffer and after the buffer's first", () => {
  // Deno's adapter reads a buffer's address once and adds each view's offset: checked through
  // the memory itself, for views at several offsets of one buffer, asked for in any order.
  const nat = native();
  const buffer = new ArrayBuffer(64);
  new Uint8Array(buffer).forEach((_, i, a) => (a[i] = i));
  for (const offset of [0, 8, 40, 8, 0, 63]) {
    const seen = new Uint8Array(1);
    nat.copyFrom(nat.addressOf(new Uint8Array(buffer, offset)), seen);
    assert.equal(seen[0], offset, `the view at offset ${offset}`);
  }
  // A view of a small typed array's own buffer, made before and after its buffer is taken.
  const small = new Uint8Array([7, 8, 9, 10]);
  const seen = new Uint8Array(1);
  nat.copyFrom(nat.addressOf(small.subarray(2)), seen);
  assert.equal(seen[0], 9);
  nat.copyFrom(nat.addressOf(small.subarray(1)), seen);
  assert.equal(seen[0], 8);
});
