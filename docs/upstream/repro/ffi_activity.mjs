// Foreign-call activity on another thread: a `nonblocking` FFI call runs on one of Deno's
// blocking-pool threads. This loops GetQueuedCompletionStatus with a 1 ms timeout on a
// completion port of its own (nothing is ever queued to it, so each call times out) until
// stopped. It touches no pipe and no handle of Deno's.
export function start() {
  const k32 = Deno.dlopen("kernel32.dll", {
    CreateIoCompletionPort: { parameters: ["usize", "usize", "usize", "u32"], result: "usize" },
    GetQueuedCompletionStatus: {
      parameters: ["usize", "buffer", "buffer", "buffer", "u32"],
      result: "i32",
      nonblocking: true,
    },
    CloseHandle: { parameters: ["usize"], result: "i32" },
  });
  const INVALID = 0xffff_ffff_ffff_ffffn;
  const port = k32.symbols.CreateIoCompletionPort(INVALID, 0n, 0n, 1);
  const bytes = new Uint8Array(4), key = new Uint8Array(8), ov = new Uint8Array(8);
  let running = true;
  let calls = 0;
  const loop = (async () => {
    while (running) {
      await k32.symbols.GetQueuedCompletionStatus(port, bytes, key, ov, 1);
      calls++;
    }
  })();
  return async () => {
    running = false;
    await loop;
    k32.symbols.CloseHandle(port);
    console.log(`ffi: ${calls} GetQueuedCompletionStatus calls`);
  };
}
