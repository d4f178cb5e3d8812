// The reader's state machine against a fake pipe: reads on demand, ordering, the end, errors,
// message assembly, BYOB, cancel's hand-back and its bound, deterministically. Runs on any OS.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PipeError } from "../mod.ts";
import { fakeReader, tick } from "./fake_channel.ts";

const decode = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const enc = (s: string) => new TextEncoder().encode(s);

test("no ReadFile until the consumer asks; then bytes arrive in order", async () => {
  const { channel, reader } = fakeReader();
  const r = reader.readable.getReader();
  await tick();
  assert.equal(channel.reads, 0, "nothing asked yet");
  const first = r.read();
  await tick();
  assert.equal(channel.reads, 1);
  channel.write(enc("hello, "));
  channel.completeRead();
  assert.equal(decode((await first).value), "hello, ");
  const second = r.read();
  await tick();
  channel.write(enc("world"));
  channel.completeRead();
  assert.equal(decode((await second).value), "world");
  assert.equal(reader.bytesRead, 12);
});

test("109, 232 and 233 end the stream; other codes error it with the call that failed", async () => {
  for (const code of [109, 232, 233]) {
    const { channel, reader } = fakeReader();
    const r = reader.readable.getReader();
    const read = r.read();
    await tick();
    channel.failRead(code);
    assert.equal((await read).done, true, `code ${code}`);
    await tick();
    assert.equal(channel.released, true);
  }
  const { channel, reader } = fakeReader();
  const r = reader.readable.getReader();
  const read = r.read();
  await tick();
  channel.failRead(5);
  await assert.rejects(read, {
    name: "PipeError",
    code: "ERROR_ACCESS_DENIED",
    syscall: "ReadFile",
  });
});

// (A GetLastError of 0 never reaches the reader: the channel reports it as 1287, tested under Wine.)
test("a synchronous failure with any code errors the stream once", async () => {
  for (const code of [5, 6, 87, 995, 1287, 12345]) {
    const { channel, reader } = fakeReader();
    channel.failNextStart = code;
    const r = reader.readable.getReader();
    await assert.rejects(r.read(), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.errno, code);
      return true;
    });
    await tick();
    assert.equal(channel.reads, 0, "it did not try again");
  }
});

test("message mode: ERROR_MORE_DATA parts are one message", async () => {
  const { channel, reader } = fakeReader({ messageMode: true, readSize: 4 });
  const r = reader.readable.getReader();
  const read = r.read();
  channel.write(enc("0123456789"));
  await tick();
  channel.completeRead(4, 234);
  await tick();
  channel.completeRead(4, 234);
  await tick();
  channel.completeRead(2, 0);
  assert.equal(decode((await read).value), "0123456789");
});

test("message mode: an empty message is an empty chunk, and the stream is not a byte stream", async () => {
  const { channel, reader } = fakeReader({ messageMode: true, readSize: 4 });
  assert.throws(() => reader.readable.getReader({ mode: "byob" }), TypeError);
  const r = reader.readable.getReader();
  const got: string[] = [];
  for (const message of ["ab", "", "", "cdefg", ""]) {
    const read = r.read();
    await tick();
    channel.write(enc(message));
    if (message.length > 4) {
      channel.completeRead(4, 234);
      await tick();
    }
    channel.completeRead();
    const { value, done } = await read;
    assert.equal(done, false);
    got.push(decode(value));
  }
  assert.deepEqual(got, ["ab", "", "", "cdefg", ""]);
  const end = r.read();
  await tick();
  channel.failRead(109);
  assert.equal((await end).done, true, "the peer leaving ends it, as before");
});

test("BYOB: the kernel reads straight into the consumer's view, never more than it holds", async () => {
  const { channel, reader } = fakeReader({ readSize: 1024 });
  const r = reader.readable.getReader({ mode: "byob" });
  const read = r.read(new Uint8Array(3));
  await tick();
  const target = channel.inFlight!.buffer;
  assert.equal(target.byteLength, 3, "no more than the view can take");
  channel.write(enc("abcdef"));
  channel.completeRead();
  const { value } = await read;
  assert.equal(decode(value), "abc");
  // The stream transferred the very buffer the read went into back to the consumer: no copy.
  assert.equal(target.buffer.byteLength, 0, "the read's buffer went back to the consumer");
  assert.equal(value!.buffer.byteLength, 3);
});

test("default reads: a large read hands its buffer over, a small one is copied out", async () => {
  const { channel, reader } = fakeReader({ readSize: 16 });
  const r = reader.readable.getReader();
  let read = r.read();
  await tick();
  const first = channel.inFlight!.buffer;
  channel.write(new Uint8Array(16).fill(1));
  channel.completeRead();
  assert.equal((await read).value!.byteLength, 16);
  assert.equal(first.buffer.byteLength, 0, "the filled buffer itself went to the consumer");
  read = r.read();
  await tick();
  const second = channel.inFlight!.buffer;
  assert.notEqual(second.buffer, first.buffer, "a new buffer for the next read");
  channel.write(enc("ab"));
  channel.completeRead();
  assert.equal(decode((await read).value), "ab");
  assert.equal(second.buffer.byteLength, 16, "2 of 16 bytes: copied out, the buffer kept");
  read = r.read();
  await tick();
  assert.equal(channel.inFlight!.buffer.buffer, second.buffer, "the buffer is kept");
  channel.write(enc("c"));
  channel.completeRead();
  assert.equal(decode((await read).value), "c");
});

test("reads that complete at once are delivered in order without waiting for a completion", async () => {
  const { channel, reader } = fakeReader({ readSize: 4 });
  channel.atOnce = true;
  channel.write(enc("abcdefghij"));
  const r = reader.readable.getReader();
  const got: string[] = [];
  for (let i = 0; i < 3; i++) got.push(decode((await r.read()).value));
  assert.deepEqual(got, ["abcd", "efgh", "ij"]);
  assert.equal(channel.readsAtOnce, 3);
  const pending = r.read();
  await tick();
  assert.ok(channel.inFlight, "nothing waiting: the read is pending");
  channel.write(enc("k"));
  channel.completeRead();
  assert.equal(decode((await pending).value), "k");
});

test("message mode: a part that completed at once with ERROR_MORE_DATA joins the rest", async () => {
  const { channel, reader } = fakeReader({ messageMode: true, readSize: 4 });
  const r = reader.readable.getReader();
  const read = r.read();
  await tick();
  channel.write(enc("abcdef"));
  channel.completeRead(4, 234);
  await tick();
  channel.completeRead();
  assert.equal(decode((await read).value), "abcdef");
});

test("a cancel that times out with a BYOB read owed errors the stream: the view is never handed back", async () => {
  const { channel, reader } = fakeReader();
  const r = reader.readable.getReader({ mode: "byob" });
  const read = r.read(new Uint8Array(8));
  await tick();
  const target = channel.inFlight!.buffer;
  channel.cancelResult = 6;
  await assert.rejects(reader.cancel(), /had not completed after 2000 ms/);
  await assert.rejects(read, /had not completed/, "the read fails instead of returning the view");
  assert.equal(target.buffer.byteLength, 8, "the kernel's target was not transferred back");
  channel.failRead(995);
  await tick();
  assert.equal(channel.released, true);
  assert.deepEqual(channel.violations, []);
});

test("cancel() hands back what the read in flight had taken; nothing is lost", async () => {
  const { channel, reader } = fakeReader();
  const r = reader.readable.getReader();
  const delivered: number[] = [];
  let read = r.read();
  await tick();
  channel.write(enc("first "));
  channel.completeRead();
  delivered.push(...(await read).value!);
  read = r.read();
  await tick();
  channel.write(enc("second third"));
  const cancelling = reader.cancel();
  // The cancelled read had completed in the kernel with 7 bytes before the cancel reached it.
  channel.completeRead(7, 0);
  const rest = await cancelling;
  assert.equal((await read).done, true);
  const accounted = [...delivered, ...rest, ...channel.pipe];
  assert.deepEqual(accounted, channel.written);
  assert.equal(decode(rest), "second ");
  assert.deepEqual(channel.violations, []);
});

test("cancel() gives up after 2 s when the read never completes, and releases it once it does", async () => {
  const { channel, reader } = fakeReader();
  const r = reader.readable.getReader();
  const read = r.read();
  await tick();
  channel.cancelResult = 6;
  const t0 = performance.now();
  await assert.rejects(reader.cancel(), /had not completed after 2000 ms/);
  assert.ok(performance.now() - t0 >= 1_900);
  assert.equal((await read).done, true, "the stream's read ended");
  assert.equal(channel.released, false, "never released under the kernel");
  channel.failRead(995);
  await tick();
  assert.equal(channel.released, true);
  assert.deepEqual(channel.violations, []);
});

test("an exception while starting the next read inside a completion errors the stream", async () => {
  const { channel, reader } = fakeReader({ messageMode: true, readSize: 4 });
  const r = reader.readable.getReader();
  const read = r.read();
  await tick();
  channel.write(enc("0123456789"));
  const real = channel.startRead.bind(channel);
  channel.startRead = () => {
    channel.startRead = real;
    throw new Error("boom");
  };
  channel.completeRead(4, 234); // a part: the next read starts from here, and throws
  await assert.rejects(read, /internal error: boom/);
});

test("bad options are a TypeError", () => {
  for (const readSize of [0, -1, 1.5, 2 ** 32, "64" as never]) {
    assert.throws(() => fakeReader({ readSize }), TypeError);
  }
  assert.throws(() => fakeReader({ messageMode: 1 as never }), /messageMode/);
});

test("without a readSize, reads grow while they come back full, and shrink back after", async () => {
  const { channel, reader } = fakeReader();
  const r = reader.readable.getReader();
  const sizes: number[] = [];
  for (let i = 0; i < 6; i++) {
    const read = r.read();
    await tick();
    sizes.push(channel.inFlight!.buffer.byteLength);
    channel.write(new Uint8Array(channel.inFlight!.buffer.byteLength));
    channel.completeRead();
    await read;
  }
  assert.deepEqual(sizes.map((s) => s / 1024), [64, 128, 256, 512, 1024, 1024]);
  let read = r.read();
  await tick();
  channel.write(enc("small"));
  channel.completeRead();
  assert.equal(decode((await read).value), "small");
  read = r.read();
  await tick();
  assert.equal(channel.inFlight!.buffer.byteLength, 64 * 1024, "back to the default");
  channel.write(enc("x"));
  channel.completeRead();
  await read;
});

test("a readSize that was given is used as it is", async () => {
  const { channel, reader } = fakeReader({ readSize: 1000 });
  const r = reader.readable.getReader();
  for (let i = 0; i < 3; i++) {
    const read = r.read();
    await tick();
    assert.equal(channel.inFlight!.buffer.byteLength, 1000);
    channel.write(new Uint8Array(1000));
    channel.completeRead();
    await read;
  }
});

// readInto: PipeConnection.read(p)'s path, with no stream in between.

test("readInto: what p has no room for is kept for the next call, and calls made at once are served in order", async () => {
  const { channel, reader } = fakeReader();
  const a = new Uint8Array(3);
  const b = new Uint8Array(4);
  const c = new Uint8Array(100);
  const reads = [reader.readInto(a), reader.readInto(b), reader.readInto(c)];
  await tick();
  assert.equal(channel.reads, 1, "one read for the three calls");
  channel.write(enc("abcdefghij"));
  channel.completeRead();
  // Bounded: a call left waiting for another read would hang the test rather than fail it.
  const got = await Promise.race([Promise.all(reads), tick().then(() => "a call still waits")]);
  assert.deepEqual(got, [3, 4, 3]);
  assert.equal(decode(a) + decode(b) + decode(c.subarray(0, 3)), "abcdefghij");
  assert.equal(channel.reads, 1, "the rest came from what was kept, not from another read");
  assert.equal(reader.bytesRead, 10);
});

test("readInto: a read that completes at once is taken at once; the end is null, again and again", async () => {
  const { channel, reader } = fakeReader();
  channel.atOnce = true;
  channel.write(enc("xyz"));
  const p = new Uint8Array(8);
  assert.equal(await reader.readInto(p), 3);
  assert.equal(decode(p.subarray(0, 3)), "xyz");
  assert.equal(channel.readsAtOnce, 1);
  const end = reader.readInto(p);
  await tick();
  channel.failRead(109);
  assert.equal(await end, null);
  assert.equal(await reader.readInto(p), null);
  await tick();
  assert.equal(channel.released, true);
  assert.deepEqual(channel.violations, []);
});

test("readInto: a failure rejects this call and every later one with the same PipeError", async () => {
  const { channel, reader } = fakeReader();
  const first = reader.readInto(new Uint8Array(8));
  const second = reader.readInto(new Uint8Array(8));
  await tick();
  channel.failRead(5);
  const e1 = await first.then(() => undefined, (e: unknown) => e);
  assert.ok(e1 instanceof PipeError);
  assert.equal(e1.code, "ERROR_ACCESS_DENIED");
  assert.equal(e1.syscall, "ReadFile");
  await assert.rejects(second, (e: unknown) => e === e1);
  await assert.rejects(reader.readInto(new Uint8Array(8)), (e: unknown) => e === e1);
  assert.equal(channel.reads, 1, "nothing was read after the failure");
});

test("readInto: a failure to start rejects with its code, and nothing is tried again", async () => {
  const { channel, reader } = fakeReader();
  channel.failNextStart = 6;
  await assert.rejects(
    reader.readInto(new Uint8Array(8)),
    (e: unknown) => e instanceof PipeError && e.errno === 6 && e.syscall === "ReadFile",
  );
  await assert.rejects(reader.readInto(new Uint8Array(8)), PipeError);
  assert.equal(channel.startFailures, 1);
  assert.equal(channel.reads, 0);
});

test("readInto: cancel() ends the calls waiting with null and hands back what the read had taken", async () => {
  const { channel, reader } = fakeReader();
  const waiting = [reader.readInto(new Uint8Array(8)), reader.readInto(new Uint8Array(8))];
  await tick();
  const cancelled = reader.cancel();
  await tick();
  assert.equal(channel.cancelCalls, 1);
  channel.write(enc("late"));
  channel.completeRead(Infinity, 995); // ERROR_OPERATION_ABORTED, with the bytes it had
  assert.deepEqual(await Promise.all(waiting), [null, null]);
  // (The fake reports 995 with its bytes, as a cancelled read that had transferred some does.)
  assert.equal(decode(await cancelled), "late");
  assert.equal(await reader.readInto(new Uint8Array(8)), null);
  assert.deepEqual(channel.violations, []);
});

test("readInto: cancel() hands back what a call had no room for; read after it is null", async () => {
  const { channel, reader } = fakeReader();
  channel.atOnce = true;
  channel.write(enc("abcdefghij"));
  const p = new Uint8Array(4);
  assert.equal(await reader.readInto(p), 4);
  assert.equal(decode(await reader.cancel()), "efghij");
  assert.equal(await reader.readInto(p), null);
  assert.deepEqual(channel.violations, []);
});

test("readInto: a long chain of reads that complete at once gives timers their turn", async () => {
  const { channel, reader } = fakeReader({ readSize: 1 });
  channel.atOnce = true;
  channel.write(new Uint8Array(50_000));
  let timerRan = false;
  setTimeout(() => (timerRan = true), 0);
  const p = new Uint8Array(1);
  const started = Date.now();
  let n = 0;
  while (!timerRan && n < 50_000) n += (await reader.readInto(p))!;
  assert.ok(timerRan, `a timer never ran in ${n} reads (${Date.now() - started} ms)`);
  await reader.cancel();
});

test("readInto: any number of calls waiting behind one read are served when it completes", async () => {
  const { channel, reader } = fakeReader();
  const n = 50_000;
  const ps = Array.from({ length: n }, () => new Uint8Array(1));
  const reads = ps.map((p) => reader.readInto(p));
  await tick();
  const data = Uint8Array.from({ length: n }, (_, i) => i & 0xff);
  channel.write(data);
  channel.completeRead();
  const counts = await Promise.race([Promise.all(reads), tick().then(() => "calls still wait")]);
  assert.ok(Array.isArray(counts), String(counts));
  assert.ok(counts.every((k) => k === 1));
  assert.ok(ps.every((p, i) => p[0] === (i & 0xff)), "in the order the calls were made");
});

test("a failure to start keeps the channel's words, in the stream and in readInto", async () => {
  for (const how of ["stream", "readInto"]) {
    const { channel, reader } = fakeReader();
    channel.startRead = () => ({
      error: 6,
      syscall: "ReadFile",
      detail: "the pipe handle was already closed",
    });
    const read = how === "stream"
      ? reader.readable.getReader().read()
      : reader.readInto(new Uint8Array(8));
    await assert.rejects(read, (e: unknown) => {
      assert.ok(e instanceof PipeError, how);
      assert.equal(e.errno, 6);
      assert.match(e.message, /already closed/, how);
      return true;
    });
  }
});

test("readInto: reads grow while they come back full, whatever p's size, and shrink back after", async () => {
  const { channel, reader } = fakeReader();
  const sizes: number[] = [];
  const startRead = channel.startRead.bind(channel);
  channel.startRead = (buffer, onComplete) => {
    sizes.push(buffer.byteLength);
    return startRead(buffer, onComplete);
  };
  const p = new Uint8Array(1000);
  const read = async () => {
    const got = reader.readInto(p); // a read it needs starts at once
    if (channel.inFlight) channel.completeRead();
    return await got;
  };
  channel.write(new Uint8Array(4 * 1024 * 1024));
  let n = 0;
  while (n < 4 * 1024 * 1024) n += (await read())!;
  const K = 1024;
  assert.deepEqual(
    sizes.slice(0, 6),
    [64 * K, 128 * K, 256 * K, 512 * K, 1024 * K, 1024 * K],
    "full reads double, up to 1 MiB",
  );
  channel.write(new Uint8Array(100));
  await read();
  channel.write(new Uint8Array(100));
  await read();
  assert.equal(sizes.at(-1), 64 * K, "a small read brings the size back to 64 KiB");
  await reader.cancel();
});

test("readInto: when cancel() gives up after 2 s, the calls waiting end with null at once", async () => {
  const { channel, reader } = fakeReader();
  const waiting = [reader.readInto(new Uint8Array(8)), reader.readInto(new Uint8Array(8))];
  await tick();
  channel.cancelResult = 6;
  await assert.rejects(reader.cancel(), /had not completed after 2000 ms/);
  const got = await Promise.race([Promise.all(waiting), tick().then(() => "calls still wait")]);
  assert.deepEqual(got, [null, null]);
  channel.failRead(995);
  await tick();
  assert.equal(channel.released, true);
  assert.deepEqual(channel.violations, []);
});
