// The FFI hop alone (Deno or Bun): the same 64 B overlapped ping-pong as rt_client.ts and
// rt_server.ts, through the same completion path as winpipe (CreateThreadpoolIo, completions
// skipped on synchronous success, a runtime thread-safe callback into JS), and nothing else: no
// streams, queue, promises per operation or timers. It is the ceiling this runtime sets on
// round trips on this machine ("hop alone" in bench/RESULTS.md).
//
//   hop server PIPE READY_FILE           serves one client, echoing every byte back
//   hop client PIPE COUNT SIZE RESULT     COUNT exchanges; appends {"roundTripsPerSec":N}
import { appendFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { isPeerGone, Win32 } from "../../core/errors.ts";
import {
  FILE_FLAG_OVERLAPPED,
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
  FILE_SKIP_SET_EVENT_ON_HANDLE,
  GENERIC_READ,
  GENERIC_WRITE,
  INVALID_HANDLE_VALUE,
  ioCompletionCallback,
  type NativeSymbol,
  OPEN_EXISTING,
  OVERLAPPED_INTERNAL_HIGH,
  OVERLAPPED_SIZE,
  PIPE_ACCESS_DUPLEX,
  PIPE_REJECT_REMOTE_CLIENTS,
  PIPE_TYPE_BYTE,
} from "../../ffi/kernel32.ts";
import { native } from "../../ffi/runtime.ts";

const [role, pipeName, ...rest] = process.argv.slice(2);
const nat = native();
const k = nat.kernel32;
const wide = (s: string) => {
  const a = new Uint16Array(new ArrayBuffer((s.length + 1) * 2));
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
  return a;
};
const fail = (what: string, code = k.GetLastError()): never => {
  console.error(`hop ${role}: ${what} failed: error ${code}`);
  process.exit(1);
};

// The runtimes' FFI, declared locally (only what is used), as ffi/deno.ts and ffi/bun.ts do.
interface DenoFfi {
  UnsafeCallback: {
    threadSafe(def: NativeSymbol, fn: (...args: unknown[]) => void): { pointer: object };
  };
  UnsafePointer: { value(p: object): bigint | number };
}
interface BunFfi {
  JSCallback: new(
    fn: (...args: unknown[]) => void,
    def: { args: string[]; returns: string; threadsafe: boolean },
  ) => { ptr: number | null };
}
const g = globalThis as unknown as { Bun?: unknown; Deno?: DenoFfi };

/** The raw thread-safe callback, as winpipe's adapters make it, minus their bookkeeping. */
type OnCompletion = (overlapped: bigint, error: number, bytes: number) => void;
let onCompletion: OnCompletion = () => {};
function rawCallback(): bigint {
  if (g.Bun) {
    const { JSCallback } = (import.meta as unknown as { require(id: "bun:ffi"): BunFfi })
      .require("bun:ffi");
    const cb = new JSCallback(
      (_i, _c, ov, error, bytes) =>
        onCompletion(BigInt(ov as bigint), Number(error), Number(bytes)),
      { args: ["u64", "u64", "u64", "u32", "u64", "u64"], returns: "void", threadsafe: true },
    );
    if (cb.ptr === null) return fail("JSCallback", 0);
    setInterval(() => {}, 1 << 30); // a thread-safe JSCallback keeps nothing alive
    return BigInt(cb.ptr);
  }
  const D = g.Deno!;
  const cb = D.UnsafeCallback.threadSafe(
    ioCompletionCallback,
    (_i, _c, ov, error, bytes) =>
      onCompletion(BigInt(ov as number | bigint), error as number, Number(bytes)),
  );
  return BigInt(D.UnsafePointer.value(cb.pointer));
}

function bind(handle: bigint): bigint {
  const io = k.CreateThreadpoolIo(handle, rawCallback(), 0n, 0n);
  if (io === 0n) fail("CreateThreadpoolIo");
  const modes = FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE;
  if (!k.SetFileCompletionNotificationModes(handle, modes)) {
    fail("SetFileCompletionNotificationModes");
  }
  return io;
}

const buffer = new Uint8Array(new ArrayBuffer(64 * 1024));
const readOv = new Uint8Array(new ArrayBuffer(OVERLAPPED_SIZE));
const writeOv = new Uint8Array(new ArrayBuffer(OVERLAPPED_SIZE));
const readOvAt = nat.addressOf(readOv);
const writeOvAt = nat.addressOf(writeOv);
const bufferAt = nat.addressOf(buffer);
const transferred = (ov: Uint8Array) =>
  Number(new DataView(ov.buffer).getBigUint64(OVERLAPPED_INTERNAL_HIGH, true));

/** An overlapped call: its byte count if it completed at once, or -1 if its callback will come. */
function overlapped(
  io: bigint,
  ov: Uint8Array,
  call: () => number,
  what: string,
): number {
  ov.fill(0);
  k.StartThreadpoolIo(io);
  if (call()) {
    k.CancelThreadpoolIo(io);
    return transferred(ov);
  }
  const code = k.GetLastError();
  if (code === Win32.ERROR_IO_PENDING) return -1;
  k.CancelThreadpoolIo(io);
  if (code === Win32.ERROR_PIPE_CONNECTED) return 0;
  // The server's client left between two calls (ERROR_BROKEN_PIPE, ERROR_NO_DATA): it is done.
  if (role === "server" && isPeerGone(code)) process.exit(0);
  return fail(what, code);
}

if (role === "server") {
  const [readyFile] = rest;
  const handle = k.CreateNamedPipeW(
    wide(pipeName),
    PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
    PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS,
    1,
    64 * 1024,
    64 * 1024,
    0,
    null,
  );
  if (handle === INVALID_HANDLE_VALUE) fail("CreateNamedPipeW");
  const io = bind(handle);
  /** Starts the next read: its byte count if it completed at once, else -1. */
  const read = () =>
    overlapped(
      io,
      readOv,
      () => k.ReadFile(handle, bufferAt, buffer.byteLength, null, readOvAt),
      "ReadFile",
    );
  // Echo: each read's bytes are written back, then the next read starts.
  const echo = (n: number) => {
    for (;;) {
      if (n === 0) process.exit(0); // the client left
      if (
        overlapped(
          io,
          writeOv,
          () => k.WriteFile(handle, bufferAt, n, null, writeOvAt),
          "WriteFile",
        ) < 0
      ) {
        return; // the read starts again when the write's callback comes
      }
      n = read();
      if (n < 0) return;
    }
  };
  onCompletion = (ov, error, bytes) => {
    if (error !== 0) process.exit(0); // the client left (ERROR_BROKEN_PIPE)
    if (ov === writeOvAt || connecting) {
      // A write done, or the client connected: the next read.
      connecting = false;
      const n = read();
      if (n >= 0) echo(n);
    } else {
      echo(bytes);
    }
  };
  let connecting = true;
  if (overlapped(io, readOv, () => k.ConnectNamedPipe(handle, readOvAt), "ConnectNamedPipe") >= 0) {
    onCompletion(readOvAt, 0, 0);
  }
  writeFileSync(readyFile, "ready");
} else if (role === "client") {
  const [countArg, sizeArg, resultFile] = rest;
  const count = Number(countArg);
  const size = Number(sizeArg);
  const request = new Uint8Array(new ArrayBuffer(size)).fill(0x61);
  const requestAt = nat.addressOf(request);
  let handle = INVALID_HANDLE_VALUE;
  for (let i = 0; i < 200 && handle === INVALID_HANDLE_VALUE; i++) {
    // `>>> 0`: GENERIC_READ is bit 31, and `|` yields a signed number, which Deno's u32 refuses.
    handle = k.CreateFileW(
      wide(pipeName),
      (GENERIC_READ | GENERIC_WRITE) >>> 0,
      0,
      null,
      OPEN_EXISTING,
      FILE_FLAG_OVERLAPPED,
      0n,
    );
    if (handle === INVALID_HANDLE_VALUE) await new Promise((r) => setTimeout(r, 50));
  }
  if (handle === INVALID_HANDLE_VALUE) fail("CreateFileW");
  const io = bind(handle);
  let done = 0;
  let got = 0;
  let sending = true;
  let finish = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  /** The bytes of a response came in: the exchange is over once all `size` have. */
  const received = (n: number) => {
    got += n;
    if (got < size) return;
    got -= size;
    if (++done === count) finish();
    sending = true;
  };
  // Exchanges one after another, for as long as calls complete at once: the request goes out
  // (at once, as a 64 B write into an empty pipe does), then reads until the response is in.
  // Returns when a call is pending: its callback goes on.
  const pump = () => {
    while (done < count) {
      if (sending) {
        const call = () => k.WriteFile(handle, requestAt, size, null, writeOvAt);
        if (overlapped(io, writeOv, call, "WriteFile") < 0) return;
        sending = false;
      }
      const call = () => k.ReadFile(handle, bufferAt, buffer.byteLength, null, readOvAt);
      const n = overlapped(io, readOv, call, "ReadFile");
      if (n < 0) return;
      received(n);
    }
  };
  onCompletion = (ov, error, bytes) => {
    if (error !== 0) fail(ov === writeOvAt ? "WriteFile" : "ReadFile", error);
    if (ov === writeOvAt) sending = false;
    else received(bytes);
    pump();
  };
  const t0 = performance.now();
  pump();
  await finished;
  const ms = performance.now() - t0;
  appendFileSync(resultFile, JSON.stringify({ roundTripsPerSec: count / (ms / 1000) }) + "\n");
  process.exit(0);
} else {
  console.error("usage: hop server PIPE READY_FILE | hop client PIPE COUNT SIZE RESULT_FILE");
  process.exit(2);
}
