/// <reference lib="deno.ns" />
/**
 * `deno bench -A bench/completion_path_bench.ts` (Windows; under Wine via scripts/wine.sh).
 *
 * The candidate completion paths, side by side on the same pipes: 1000 sequential 4 KiB writes,
 * each awaited before the next, so the time is what one write's completion costs. Two workloads:
 * - "fit in the buffer": the server's buffer (1 MiB) holds every write, so a write can complete
 *   at once;
 * - "wait for the reader": the server's buffer is 0 bytes, so every write waits for the reader, and its
 *   completion has to make the trip from another thread to JS.
 *
 * The candidates (the bench's baseline is winpipe's):
 * - winpipe's: `CreateThreadpoolIo`, one thread-safe callback; with
 *   FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, a write that completes at once is handled inline;
 * - the same without that mode (every completion is queued and makes the trip);
 * - a completion port of our own, drained by a `nonblocking` GetQueuedCompletionStatusEx on
 *   Deno's blocking pool (one wake-up delivers every completion that has arrived), with the mode;
 * - Qt's: `CreateThreadpoolWait` on the OVERLAPPED's event, then GetOverlappedResult in JS.
 *
 * This file talks to Deno's FFI directly for the designs winpipe does not ship.
 */
import { INVALID_HANDLE_VALUE } from "../ffi/kernel32.ts";
import { isWindows, native } from "../ffi/runtime.ts";
import { securityAttributes } from "../windows/security.ts";
import { connected, overlappedPipe, SIZE, WRITES } from "./completion_common.ts";

const INFINITE = 0xffff_ffff;
const onWindows = isWindows();
const workloads = { "fit in the buffer": 1 << 20, "wait for the reader": 0 } as const;

function bench(name: string, fn: (inBufferSize: number) => Promise<void>) {
  for (const [workload, inBufferSize] of Object.entries(workloads)) {
    Deno.bench(`${name}: ${WRITES} awaited 4 KiB writes`, {
      group: `completion path, writes that ${workload}`,
      baseline: name.startsWith("winpipe"),
      ignore: !onWindows,
      n: 10,
      warmup: 2,
      // async and awaited: Deno times a plain function that returns a promise only to its return.
    }, async () => await fn(inBufferSize));
  }
}

bench("winpipe: CreateThreadpoolIo, completing at once", async (b) => {
  await overlappedPipe(b, true);
});
bench("CreateThreadpoolIo, every completion queued", async (b) => {
  await overlappedPipe(b, false);
});

bench("own completion port, nonblocking GetQueuedCompletionStatusEx", async (inBufferSize) => {
  const { kernel32, addressOf } = native();
  const lib = Deno.dlopen("kernel32.dll", {
    // HANDLE CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort,
    //   ULONG_PTR CompletionKey, DWORD NumberOfConcurrentThreads)
    CreateIoCompletionPort: { parameters: ["usize", "usize", "usize", "u32"], result: "usize" },
    // BOOL GetQueuedCompletionStatusEx(HANDLE CompletionPort, LPOVERLAPPED_ENTRY lpEntries,
    //   ULONG ulCount, PULONG ulNumEntriesRemoved, DWORD dwMilliseconds, BOOL fAlertable)
    GetQueuedCompletionStatusEx: {
      parameters: ["usize", "buffer", "u32", "buffer", "u32", "i32"],
      result: "i32",
      nonblocking: true,
    },
  });
  const { server, handle, reading } = await connected(inBufferSize);
  const port = BigInt(lib.symbols.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0n, 0n, 1));
  lib.symbols.CreateIoCompletionPort(handle, port, 1n, 0);
  kernel32.SetFileCompletionNotificationModes(handle, 3);
  const overlapped = new Uint8Array(new ArrayBuffer(32));
  const ov = addressOf(overlapped);
  const data = new Uint8Array(new ArrayBuffer(SIZE));
  const entries = new Uint8Array(new ArrayBuffer(32 * 16));
  const removed = new Uint32Array(1);
  for (let i = 0; i < WRITES; i++) {
    overlapped.fill(0);
    if (kernel32.WriteFile(handle, addressOf(data), SIZE, null, ov)) continue; // at once
    const e = kernel32.GetLastError();
    if (e !== 997) throw new Error(`WriteFile: ${e}`);
    if (!(await lib.symbols.GetQueuedCompletionStatusEx(port, entries, 16, removed, INFINITE, 0))) {
      throw new Error(`GetQueuedCompletionStatusEx: ${kernel32.GetLastError()}`);
    }
  }
  kernel32.CloseHandle(handle);
  kernel32.CloseHandle(port);
  lib.close();
  await reading;
  await server.close();
});

bench("Qt: CreateThreadpoolWait, then GetOverlappedResult", async (inBufferSize) => {
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
    GetOverlappedResult: { parameters: ["usize", "usize", "buffer", "i32"], result: "i32" },
  });
  const { server, handle, reading } = await connected(inBufferSize);
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
      // WriteFile resets the event; the wait is armed after it (the event is set if it is done).
      if (!kernel32.WriteFile(handle, addressOf(data), SIZE, null, ov)) {
        const e = kernel32.GetLastError();
        if (e !== 997) return reject(e);
      }
      lib.symbols.SetThreadpoolWait(wait, event, null);
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
