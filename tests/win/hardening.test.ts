// The hardening issue, against real kernel32: names Win32 would rewrite, options checked before
// any system call, all-or-nothing construction, failures that read GetLastError 0, errors that
// name the call that failed, CloseThreadpoolIo's teardown order, cancellation that ends in
// bounded time when CancelIoEx fails, \\?\ names, and exceptions that never escape a completion
// callback. Rare failures are made on demand by replacing a kernel32 entry (faults.ts).
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { toWide } from "../../core/names.ts";
import { openSettings } from "../../core/options.ts";
import { native } from "../../ffi/runtime.ts";
import {
  connect,
  listen,
  PipeError,
  type PipeErrorEvent,
  PipeReader,
  PipeWriter,
} from "../../mod.ts";
import { openPipeHandle } from "../../windows/open.ts";
import { countCalls, failingWith, inject } from "./faults.ts";
import { assertHandlesBack, settledSnapshot } from "./handles.ts";
import { pair, Pattern, ServerEnd, sleep, uniqueName, within } from "./server_end.ts";

const pattern = new Pattern(13);
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

/** A writer connected to a ServerEnd that reads only when told. */
async function writerPair(tag: string, inBufferSize?: number) {
  const name = uniqueName(tag);
  const server = ServerEnd.create(name, { inBufferSize });
  const connected = server.connect();
  const writer = await PipeWriter.open(name);
  await connected;
  return { name, server, writer };
}

/** A client handle of our own (openPipeHandle), connected to a listen() server. */
async function rawClient(tag: string, access: "write" | "duplex" = "duplex") {
  const name = uniqueName(tag);
  const server = listen(name, { inBufferSize: 1024, outBufferSize: 1024 });
  const accepted = server.accept();
  const handle = await openPipeHandle(name, access, openSettings({}, "test"));
  const peer = (await accepted)!;
  return { name, server, handle, peer };
}

// ---- names ----

const walkArounds: [string, string][] = [
  [String.raw`\\.\pipe\..\UNC\otherhost\pipe\x`, String.raw`\\.\UNC\otherhost\pipe\x`],
  [String.raw`\\.\pipe\a\..\..\UNC\otherhost\pipe\x`, String.raw`\\.\UNC\otherhost\pipe\x`],
  [
    String.raw`\\.\pipe\..\GLOBALROOT\Device\Mup\otherhost\pipe\x`,
    String.raw`\\.\GLOBALROOT\Device\Mup\otherhost\pipe\x`,
  ],
  [String.raw`\\.\pipe\../UNC/otherhost/pipe/x`, String.raw`\\.\UNC\otherhost\pipe\x`],
  [String.raw`\\.\pipe\a/../../UNC/otherhost/pipe/x`, String.raw`\\.\UNC\otherhost\pipe\x`],
  [String.raw`\\.\pipe\..\COM1`, String.raw`\\.\COM1`],
];

test("Win32 resolves the walk-around names to another host or a device (GetFullPathNameW)", () => {
  const k = native().kernel32;
  for (const [name, resolved] of walkArounds) {
    const out = new Uint16Array(1024);
    const n = k.GetFullPathNameW(toWide(name), out.length, out, null);
    assert.equal(String.fromCharCode(...out.subarray(0, n)), resolved, name);
  }
});

test("connect, PipeWriter.open and listen refuse them before any system call", async () => {
  const opens = countCalls("CreateFileW");
  const creates = countCalls("CreateNamedPipeW");
  try {
    for (const [name] of walkArounds) {
      await assert.rejects(PipeWriter.open(name), TypeError, name);
      await assert.rejects(connect(name), TypeError, name);
      await assert.rejects(connect(name, { allowRemote: true }), TypeError, name);
      assert.throws(() => listen(name), TypeError, name);
    }
  } finally {
    opens.restore();
    creates.restore();
  }
  assert.equal(opens.calls, 0, "CreateFileW was never called");
  assert.equal(creates.calls, 0, "CreateNamedPipeW was never called");
});

// ---- options ----

test("bad options are refused before any system call: nothing opened, created or leaked", async () => {
  const before = await settledSnapshot();
  const name = uniqueName("opts");
  const server = listen(name);
  const opens = countCalls("CreateFileW");
  const creates = countCalls("CreateNamedPipeW");
  try {
    const badClient = [
      { readSize: 0 },
      { readSize: 2 ** 32 },
      { readSize: 1.5 },
      { highWaterMark: 0 },
      { messageMode: "yes" },
      { timeout: -1 },
      { timeout: NaN },
      { wait: 1 },
      { access: "sideways" },
      { signal: {} },
      { allowRemote: "true" },
    ];
    for (const bad of badClient) {
      await assert.rejects(connect(name, bad as never), TypeError, JSON.stringify(bad));
    }
    await assert.rejects(PipeWriter.open(name, { highWaterMark: 0 }), TypeError);
    await assert.rejects(PipeWriter.open(name, { timeout: "5" as never }), TypeError);
    await assert.rejects(connect(name, null as never), TypeError);
    const badServer = [
      { readSize: 0 },
      { highWaterMark: 0 },
      { maxInstances: 0 },
      { maxInstances: 256 },
      { inBufferSize: -1 },
      { outBufferSize: 2 ** 32 },
      { messageMode: 1 },
      { rejectRemoteClients: "no" },
      { firstInstance: null },
      { security: "" },
      { security: 5 },
    ];
    for (const bad of badServer) {
      assert.throws(() => listen(uniqueName("opts"), bad as never), TypeError, JSON.stringify(bad));
    }
  } finally {
    opens.restore();
    creates.restore();
  }
  assert.equal(opens.calls, 0, "CreateFileW was never called");
  assert.equal(creates.calls, 0, "CreateNamedPipeW was never called");
  const nobody = await Promise.race([server.accept().then(() => "a client"), sleep(100)]);
  assert.equal(nobody, undefined, "the server saw no client");
  await server.close();
  await assertHandlesBack(before, "after the refused calls");
});

test("maxBlock is not an option: { maxBlock: 0 } is ignored and writes complete", async () => {
  const name = uniqueName("maxblock");
  const server = ServerEnd.create(name);
  const connected = server.connect();
  const writer = await PipeWriter.open(name, { maxBlock: 0 } as never);
  await connected;
  const reading = server.drain();
  writer.write(pattern.at(0, 100_000));
  await within(10_000, writer.close(), "close");
  assert.equal(await within(10_000, reading), 100_000);
  await server.close();
});

// ---- all or nothing ----

test("fromHandle with bad options touches nothing: the handle can still be bound", async () => {
  const { server, handle, peer } = await rawClient("fromhandle");
  assert.throws(() => PipeReader.fromHandle(handle, { readSize: 0 }), TypeError);
  assert.throws(() => PipeReader.fromHandle(handle, { owned: "yes" } as never), TypeError);
  assert.throws(() => PipeWriter.fromHandle(handle, { highWaterMark: 0 }), TypeError);
  assert.throws(() => PipeWriter.fromHandle(handle, { path: 5 } as never), TypeError);
  // Had a failed call bound the handle, this would fail: a handle binds to one port for good.
  const reader = PipeReader.fromHandle(handle, { owned: true });
  peer.writer!.write("still usable");
  const r = reader.readable.getReader();
  assert.equal(text((await within(5_000, r.read())).value), "still usable");
  r.releaseLock();
  await reader.cancel();
  await peer.close();
  await server.close();
});

test("a connection that fails to construct closes its handle: nothing is half-made", async () => {
  const before = await settledSnapshot();
  const name = uniqueName("halfmade");
  const server = listen(name);
  const restore = inject("GetNamedPipeServerProcessId", () => () => {
    throw new Error("injected failure");
  });
  try {
    await assert.rejects(connect(name), /injected failure/);
  } finally {
    restore();
  }
  const peer = (await within(5_000, server.accept()))!;
  const end = await within(5_000, peer.readable.getReader().read());
  assert.equal(end.done, true, "the client's handle was closed");
  await peer.close();
  await server.close();
  await assertHandlesBack(before, "after the failed connection");
});

// ---- GetLastError 0 ----

test("WriteFile failing with GetLastError 0 fails the writer (ERROR_UNIDENTIFIED_ERROR), no hang", async () => {
  const { server, writer } = await writerPair("gle0w");
  const restore = inject("WriteFile", () => failingWith(0));
  try {
    writer.write("x");
  } finally {
    restore();
  }
  await assert.rejects(within(5_000, writer.flush(), "flush"), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.code, "ERROR_UNIDENTIFIED_ERROR");
    assert.equal(e.syscall, "WriteFile");
    assert.match(e.message, /GetLastError\(\) read 0/);
    return true;
  });
  await assert.rejects(writer.close());
  await server.close();
});

test("ReadFile failing with GetLastError 0 errors the stream once, no spin", async () => {
  const { client: conn, close } = await pair("gle0r");
  let calls = 0;
  const restore = inject("ReadFile", () => {
    const fail = failingWith(0);
    return () => {
      calls++;
      return fail();
    };
  });
  try {
    const r = conn.readable.getReader();
    await assert.rejects(within(5_000, r.read(), "read"), {
      name: "PipeError",
      code: "ERROR_UNIDENTIFIED_ERROR",
      syscall: "ReadFile",
    });
    await sleep(50);
  } finally {
    restore();
  }
  assert.equal(calls, 1, "one ReadFile, not a loop");
  await close();
});

test("ConnectNamedPipe failing with GetLastError 0 fails the server; no unconnected instance is handed out", async () => {
  const name = uniqueName("gle0s");
  const server = listen(name);
  // The first instance is already listening; the next one (made when a client connects) fails.
  const restore = inject("ConnectNamedPipe", () => failingWith(0));
  let client, first;
  try {
    client = await connect(name);
    first = await within(5_000, server.accept()); // the next instance was made meanwhile
  } finally {
    restore();
  }
  assert.ok(first, "the real connection");
  await assert.rejects(within(5_000, server.accept()), {
    name: "PipeError",
    code: "ERROR_UNIDENTIFIED_ERROR",
    syscall: "ConnectNamedPipe",
  });
  await Promise.all([client.close(), first.close()]);
  await server.close();
});

// ---- the call that failed ----

test("a failed GetOverlappedResultEx is reported as itself, not as WriteFile", async () => {
  const { server, writer } = await writerPair("gore", 1024);
  writer.write(pattern.at(0, 256 * 1024)); // far more than the pipe holds: stays in flight
  const restore = inject("GetOverlappedResultEx", () => failingWith(6));
  try {
    assert.throws(() => writer.flushSync(1_000), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.syscall, "GetOverlappedResultEx");
      assert.equal(e.code, "ERROR_INVALID_HANDLE");
      return true;
    });
  } finally {
    restore();
  }
  // The write is still in flight: its memory waits for its completion, which the server's close
  // brings, and then everything is released.
  await server.close();
  await assert.rejects(within(5_000, writer.close(), "close"), (e) => e === writer.error);
});

test("fromHandle on a disk file says so, without a stale GetLastError", () => {
  const k = native().kernel32;
  const path = join(tmpdir(), `winpipe-disk-${k.GetCurrentProcessId()}.tmp`);
  const CREATE_ALWAYS = 2;
  const FILE_FLAG_DELETE_ON_CLOSE = 0x0400_0000;
  const file = k.CreateFileW(
    toWide(path),
    0x4000_0000,
    0,
    null,
    CREATE_ALWAYS,
    FILE_FLAG_DELETE_ON_CLOSE,
    0n,
  );
  assert.notEqual(file, 0xffff_ffff_ffff_ffffn, `CreateFileW ${path}: ${k.GetLastError()}`);
  // Whatever an earlier call left in GetLastError must not become the error.
  const restore = inject("GetLastError", () => () => 5);
  try {
    assert.throws(() => PipeWriter.fromHandle(file), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.syscall, "GetFileType");
      assert.equal(e.code, "ERROR_INVALID_HANDLE");
      assert.match(e.message, /a disk file, not a pipe/);
      return true;
    });
  } finally {
    restore();
    k.CloseHandle(file);
  }
});

test("a write after the handle was closed early names the operation, not WriteFile", async () => {
  const { client: conn, conn: peer, server } = await pair("early");
  const r = conn.readable.getReader();
  const pending = r.read();
  await sleep(50); // a ReadFile is in flight
  const restore = inject("CancelIoEx", () => failingWith(6));
  let cancelling;
  try {
    cancelling = conn.reader!.cancel();
  } finally {
    restore();
  }
  // Owned: the handle is closed to end the read, whose completion then comes at once.
  assert.equal((await within(5_000, cancelling, "cancel")).byteLength, 0);
  assert.equal((await pending).done, true);
  const errors: PipeError[] = [];
  conn.writer!.addEventListener("error", (e) => errors.push((e as PipeErrorEvent).error));
  conn.writer!.write("too late");
  await assert.rejects(within(5_000, conn.writer!.flush()), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.syscall, "write");
    assert.equal(e.code, "ERROR_INVALID_HANDLE");
    assert.match(e.message, /the pipe handle was already closed/);
    return true;
  });
  await conn.close().catch(() => {}); // its writer failed: close() reports that failure
  await peer.close();
  await server.close();
});

test("flushSync after the reader closed the shared handle (a failed CancelIoEx) fails at once, not as a timeout", async () => {
  const { client: conn, conn: peer, server } = await pair("early-sync", {
    server: { inBufferSize: 4096 },
  });
  conn.writer!.write(pattern.at(0, 256 * 1024)); // the server never reads: stays in flight
  const pending = conn.readable.getReader().read();
  await sleep(50); // a ReadFile is in flight too
  const restore = inject("CancelIoEx", () => failingWith(6));
  let cancelling;
  try {
    cancelling = conn.reader!.cancel(); // closes the owned handle to end the read
  } finally {
    restore();
  }
  // The write's completion comes through the pool, later; flushSync runs before it can.
  const t0 = performance.now();
  assert.throws(() => conn.writer!.flushSync(3_000), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.syscall, "GetOverlappedResultEx");
    assert.equal(e.code, "ERROR_INVALID_HANDLE");
    assert.match(e.message, /closed to end pending I\/O/);
    return true;
  });
  assert.ok(performance.now() - t0 < 1_000, "at once, not at the deadline");
  await within(5_000, cancelling, "cancel");
  assert.equal((await within(5_000, pending)).done, true);
  await conn.close().catch(() => {});
  await peer.close();
  await server.close();
});

// ---- teardown order ----

test("an owned handle is closed before its pool object (CloseThreadpoolIo's order)", async () => {
  const { server, handle, peer } = await rawClient("order", "write");
  const log: string[] = [];
  const r1 = inject("CloseHandle", (real) => (h) => {
    if (h === handle) log.push("CloseHandle(pipe)");
    return real(h);
  });
  const r2 = inject("CloseThreadpoolIo", (real) => (io) => {
    log.push("CloseThreadpoolIo");
    return real(io);
  });
  try {
    const w = PipeWriter.fromHandle(handle, { owned: true });
    w.write("x");
    await w.close();
  } finally {
    r1();
    r2();
  }
  assert.deepEqual(log, ["CloseHandle(pipe)", "CloseThreadpoolIo"]);
  await peer.close();
  await server.close();
});

// ---- cancellation when CancelIoEx fails ----

test("PipeServer.close() when CancelIoEx fails: the instance is closed to end it, no hang", async () => {
  const before = await settledSnapshot();
  const server = listen(uniqueName("closefail"));
  const restore = inject("CancelIoEx", () => failingWith(6));
  let closing;
  try {
    closing = server.close();
  } finally {
    restore();
  }
  const t0 = performance.now();
  await assert.rejects(within(5_000, closing, "close"), { syscall: "CancelIoEx" });
  assert.ok(performance.now() - t0 < 1_500, "ended by closing the handle, not by the bound");
  await assertHandlesBack(before, "after the server's close");
});

test("stop() on a handle it does not own ends within the 2 s bound when CancelIoEx fails", async () => {
  const before = await settledSnapshot();
  const { server, handle, peer } = await rawClient("stopfail", "write");
  const w = PipeWriter.fromHandle(handle, { owned: false });
  w.write(pattern.at(0, 256 * 1024)); // nobody reads: stays in flight
  await sleep(50);
  const restore = inject("CancelIoEx", () => failingWith(6));
  let stopping;
  try {
    stopping = w.stop();
  } finally {
    restore();
  }
  const t0 = performance.now();
  await assert.rejects(within(10_000, stopping, "stop"), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.syscall, "CancelIoEx");
    assert.equal(e.code, "ERROR_INVALID_HANDLE");
    assert.match(e.message, /had not completed after 2000 ms/);
    return true;
  });
  const took = performance.now() - t0;
  assert.ok(took >= 1_800 && took < 5_000, `stop() took ${took.toFixed(0)} ms`);
  // The caller owns the handle: closing it ends the write, and then winpipe lets go of it all.
  native().kernel32.CloseHandle(handle);
  await peer.close();
  await server.close();
  await assertHandlesBack(before, "after the caller closed its handle");
});

test("a reader's cancel() on a handle it does not own ends within the 2 s bound when CancelIoEx fails", async () => {
  const before = await settledSnapshot();
  const { server, handle, peer } = await rawClient("cancelfail");
  const reader = PipeReader.fromHandle(handle, { owned: false });
  const r = reader.readable.getReader();
  const pending = r.read();
  await sleep(50); // a ReadFile is in flight; the peer writes nothing
  const restore = inject("CancelIoEx", () => failingWith(6));
  let cancelling;
  try {
    cancelling = reader.cancel();
  } finally {
    restore();
  }
  const t0 = performance.now();
  await assert.rejects(within(10_000, cancelling, "cancel"), /had not completed after 2000 ms/);
  const took = performance.now() - t0;
  assert.ok(took >= 1_800 && took < 5_000, `cancel() took ${took.toFixed(0)} ms`);
  assert.equal((await within(1_000, pending)).done, true, "the stream's read ended");
  native().kernel32.CloseHandle(handle);
  await peer.close();
  await server.close();
  await assertHandlesBack(before, "after the caller closed its handle");
});

// ---- \\?\ names ----

test(String.raw`listen() on \\?\pipe\NAME works, and owns the name in both spellings`, async () => {
  const dotted = uniqueName("qform");
  const question = dotted.replace(String.raw`\\.\ `.trim(), String.raw`\\?\ `.trim());
  assert.ok(question.startsWith(String.raw`\\?\pipe\ `.trim()));
  const server = listen(question);
  assert.throws(() => listen(question), /EADDRINUSE/);
  assert.throws(() => listen(dotted), /EADDRINUSE/);
  const accepted = server.accept();
  const conn = await connect(dotted);
  const peer = (await within(5_000, accepted))!;
  conn.writer!.write("via the other spelling");
  const r = peer.readable.getReader();
  assert.equal(text((await within(5_000, r.read())).value), "via the other spelling");
  r.releaseLock();
  await Promise.all([conn.close(), peer.close()]);
  await server.close();
});

// ---- no exception escapes a completion callback ----

test("an exception in the server's completion handling becomes the server's error", async () => {
  const name = uniqueName("throwserver");
  const server = listen(name);
  const restore = inject("GetNamedPipeClientProcessId", () => () => {
    throw new Error("injected in the callback");
  });
  let client;
  try {
    client = await connect(name);
    await assert.rejects(within(5_000, server.accept()), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.match(e.message, /injected in the callback/);
      return true;
    });
  } finally {
    restore();
  }
  await client.close();
  await server.close();
});

test("an exception while starting the next write, inside a completion, fails the writer", async () => {
  const { server, writer } = await writerPair("throwwriter");
  const reading = server.drain();
  let calls = 0;
  const restore = inject("WriteFile", (real) => (...args) => {
    if (++calls === 2) throw new Error("injected in the callback");
    return real(...args);
  });
  try {
    // The first WriteFile is larger than the pipe's buffer, so it pends (a write that fits
    // would complete at once); the second, too small to go in flight beside it, is started from
    // the first one's completion.
    writer.write(pattern.at(0, 300_000));
    writer.write(pattern.at(0, 1000));
    await assert.rejects(within(5_000, writer.flush()), /injected in the callback/);
  } finally {
    restore();
  }
  assert.equal(calls, 2);
  await assert.rejects(writer.close());
  await within(5_000, reading); // the writer's handle is closed: the server reads to the end
  await server.close();
});

test("an exception while starting the next read, inside a completion, errors the stream", async () => {
  // A message longer than a read: its first part completes with ERROR_MORE_DATA, and the read
  // for the rest is started from inside that completion.
  const { client: conn, conn: peer, close } = await pair("throwreader", {
    client: { messageMode: true, readSize: 16 },
    server: { messageMode: true },
  });
  let calls = 0;
  const restore = inject("ReadFile", (real) => (...args) => {
    if (++calls === 2) throw new Error("injected in the callback");
    return real(...args);
  });
  try {
    const r = conn.readable.getReader();
    const reading = r.read();
    peer.writer!.write("0123456789abcdef-and-more");
    await assert.rejects(within(5_000, reading), /injected in the callback/);
  } finally {
    restore();
  }
  assert.equal(calls, 2);
  await close();
});

// ---- timeouts ----

test("timeout: Infinity means no timeout, for open, flush and flushSync", async () => {
  const name = uniqueName("infinite");
  let server: ReturnType<typeof listen> | undefined;
  setTimeout(() => (server = listen(name)), 200);
  const conn = await within(5_000, connect(name, { wait: true, timeout: Infinity }), "connect");
  const peer = (await within(5_000, server!.accept()))!;
  conn.writer!.write("abc");
  await within(5_000, conn.writer!.flush({ timeout: Infinity }), "flush");
  conn.writer!.write("def");
  assert.equal(conn.writer!.flushSync(Infinity), true);
  // A timeout past setTimeout's range does not fire at once.
  await within(5_000, conn.writer!.flush({ timeout: 2 ** 31 }), "flush");
  await Promise.all([conn.close(), peer.close()]);
  await server!.close();
});
