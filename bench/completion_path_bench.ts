/// <reference lib="deno.ns" />
/**
 * `deno bench -A bench/completion_path_bench.ts` (Windows; under Wine via scripts/wine.sh).
 *
 * The two candidate completion paths, side by side, on the same pipe: 1000 sequential 4 KiB
 * writes, each awaited before the next, so the time is the cost of one completion's trip to JS.
 *
 * - "CreateThreadpoolIo" (winpipe's): the pool calls back with IoResult and the byte count.
 * - "CreateThreadpoolWait" (Qt's): the OVERLAPPED's event is waited on by the pool; the callback
 *   only says "signalled", and JS then asks GetOverlappedResult for the outcome.
 *
 * This file talks to Deno's FFI directly: it measures a design that winpipe does not ship.
 */
import { OverlappedPipe } from "../core/completion/mod.ts";
import { openPipeHandle } from "../core/open.ts";
import { securityAttributes } from "../core/security.ts";
import { isWindows, native } from "../ffi/runtime.ts";
import { ServerEnd, uniqueName } from "../tests/win/server_end.ts";

const WRITES = 1000;
const SIZE = 4096;
const onWindows = isWindows();

async function connected() {
  const name = uniqueName("cp");
  const server = ServerEnd.create(name, { inBufferSize: 1 << 20 }, 1 << 20);
  const c = server.connect();
  const handle = await openPipeHandle(name, "write");
  await c;
  const reading = server.drain();
  return { server, handle, reading };
}

Deno.bench("CreateThreadpoolIo: 1000 awaited 4 KiB writes", {
  group: "completion path",
  baseline: true,
  ignore: !onWindows,
  n: 10,
  warmup: 2,
}, async () => {
  const { server, handle, reading } = await connected();
  const pipe = OverlappedPipe.bind(handle, { owned: true });
  const channel = pipe.writeChannel();
  const data = new Uint8Array(new ArrayBuffer(SIZE));
  for (let i = 0; i < WRITES; i++) {
    await new Promise<void>((resolve, reject) => {
      const code = channel.startWrite(data, (r) => (r.error ? reject(r.error) : resolve()));
      if (code) reject(code);
    });
  }
  await pipe.release();
  await reading;
  await server.close();
});

Deno.bench("CreateThreadpoolWait: 1000 awaited 4 KiB writes", {
  group: "completion path",
  ignore: !onWindows,
  n: 10,
  warmup: 2,
}, async () => {
  const { kernel32, addressOf } = native();
  const lib = Deno.dlopen("kernel32.dll", {
    // PTP_WAIT CreateThreadpoolWait(PTP_WAIT_CALLBACK pfnwa, PVOID pv, PTP_CALLBACK_ENVIRON pcbe)
    CreateThreadpoolWait: { parameters: ["pointer", "pointer", "pointer"], result: "pointer" },
    // VOID SetThreadpoolWait(PTP_WAIT pwa, HANDLE h, PFILETIME pftTimeout)
    SetThreadpoolWait: { parameters: ["pointer", "usize", "pointer"], result: "void" },
    // VOID WaitForThreadpoolWaitCallbacks(PTP_WAIT pwa, BOOL fCancelPendingCallbacks)
    WaitForThreadpoolWaitCallbacks: {
      parameters: ["pointer", "i32"],
      result: "void",
      nonblocking: true,
    },
    // VOID CloseThreadpoolWait(PTP_WAIT pwa)
    CloseThreadpoolWait: { parameters: ["pointer"], result: "void" },
    // BOOL GetOverlappedResult(HANDLE hFile, LPOVERLAPPED lpOverlapped,
    //   LPDWORD lpNumberOfBytesTransferred, BOOL bWait)
    GetOverlappedResult: {
      parameters: ["usize", "usize", "buffer", "i32"],
      result: "i32",
    },
  });
  const { server, handle, reading } = await connected();
  const event = kernel32.CreateEventW(securityAttributes(), 1, 0, null);
  const overlapped = new Uint8Array(new ArrayBuffer(32));
  new DataView(overlapped.buffer).setBigUint64(24, event, true);
  const ov = addressOf(overlapped);
  const data = new Uint8Array(new ArrayBuffer(SIZE));
  let signalled: (() => void) | undefined;
  // VOID CALLBACK WaitCallback(PTP_CALLBACK_INSTANCE, PVOID Context, PTP_WAIT, TP_WAIT_RESULT)
  const cb = Deno.UnsafeCallback.threadSafe(
    { parameters: ["pointer", "pointer", "pointer", "u32"], result: "void" },
    () => signalled?.(),
  );
  const wait = lib.symbols.CreateThreadpoolWait(cb.pointer, null, null);
  const bytes = new Uint32Array(1);
  for (let i = 0; i < WRITES; i++) {
    await new Promise<void>((resolve, reject) => {
      signalled = () => {
        // The outcome is not in the callback: one more call, on the JS thread.
        if (!lib.symbols.GetOverlappedResult(handle, ov, bytes, 0)) {
          reject(kernel32.GetLastError());
        } else resolve();
      };
      overlapped.fill(0, 0, 24);
      lib.symbols.SetThreadpoolWait(wait, event, null);
      if (!kernel32.WriteFile(handle, addressOf(data), SIZE, null, ov)) {
        const e = kernel32.GetLastError();
        if (e !== 997) reject(e);
      }
    });
  }
  await lib.symbols.WaitForThreadpoolWaitCallbacks(wait, 0);
  lib.symbols.CloseThreadpoolWait(wait);
  cb.close();
  kernel32.CloseHandle(event);
  kernel32.CloseHandle(handle);
  lib.close();
  await reading;
  await server.close();
});

Deno.bench("CreateThreadpoolIo, raw (no winpipe code): 1000 awaited 4 KiB writes", {
  group: "completion path",
  ignore: !onWindows,
  n: 10,
  warmup: 2,
}, async () => {
  const { kernel32, addressOf } = native();
  const { server, handle, reading } = await connected();
  const overlapped = new Uint8Array(new ArrayBuffer(32));
  const ov = addressOf(overlapped);
  const data = new Uint8Array(new ArrayBuffer(SIZE));
  let completed: ((ioResult: number) => void) | undefined;
  const cb = Deno.UnsafeCallback.threadSafe(
    { parameters: ["pointer", "pointer", "pointer", "u32", "usize", "pointer"], result: "void" },
    (_i, _c, _o, ioResult) => completed?.(ioResult as number),
  );
  const io = kernel32.CreateThreadpoolIo(
    handle,
    BigInt(Deno.UnsafePointer.value(cb.pointer)),
    0n,
    0n,
  );
  for (let i = 0; i < WRITES; i++) {
    await new Promise<void>((resolve, reject) => {
      completed = (r) => (r ? reject(r) : resolve());
      overlapped.fill(0);
      kernel32.StartThreadpoolIo(io);
      if (!kernel32.WriteFile(handle, addressOf(data), SIZE, null, ov)) {
        const e = kernel32.GetLastError();
        if (e !== 997) {
          kernel32.CancelThreadpoolIo(io);
          reject(e);
        }
      }
    });
  }
  await native().waitForThreadpoolIoCallbacks(io);
  kernel32.CloseThreadpoolIo(io);
  kernel32.CloseHandle(handle);
  cb.close();
  await reading;
  await server.close();
});
