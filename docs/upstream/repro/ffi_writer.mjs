// A writer with no Deno pipe code: the client end is opened with CreateFileW (overlapped) and
// bound to a completion port of its own; each WriteFile's completion is taken by a `nonblocking`
// GetQueuedCompletionStatus, which runs on one of Deno's blocking-pool threads. One write is in
// flight at a time, so the reader's pace holds the writer back.
const k32 = Deno.dlopen("kernel32.dll", {
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "usize", "u32", "u32", "usize"],
    result: "usize",
  },
  CreateIoCompletionPort: { parameters: ["usize", "usize", "usize", "u32"], result: "usize" },
  WriteFile: { parameters: ["usize", "buffer", "u32", "usize", "buffer"], result: "i32" },
  GetQueuedCompletionStatus: {
    parameters: ["usize", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  CloseHandle: { parameters: ["usize"], result: "i32" },
  GetLastError: { parameters: [], result: "u32" },
});
const k = k32.symbols;
const INVALID = 0xffff_ffff_ffff_ffffn;
const ERROR_IO_PENDING = 997;
const wide = (s) => {
  const b = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return new Uint8Array(b.buffer);
};

/** Opens the pipe (retrying while the server is not there yet). */
export async function open(name) {
  for (let i = 0;; i++) {
    const h = k.CreateFileW(wide(name), 0x40000000, 0, 0n, 3, 0x40000000, 0n);
    if (h !== INVALID) {
      const port = k.CreateIoCompletionPort(h, 0n, 1n, 1);
      return { handle: h, port };
    }
    const e = k.GetLastError();
    if (i > 1000) throw new Error(`CreateFileW failed: ${e}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes `data` and waits for its completion (a packet always comes: no skip-on-success). */
export async function write(pipe, data) {
  const ov = new Uint8Array(32);
  const ok = k.WriteFile(pipe.handle, data, data.length, 0n, ov);
  if (!ok) {
    const e = k.GetLastError();
    if (e !== ERROR_IO_PENDING) throw new Error(`WriteFile failed: ${e}`);
  }
  const bytes = new Uint32Array(1), key = new BigUint64Array(1), povl = new BigUint64Array(1);
  // Uint8Array views: older Deno versions take no other typed arrays for "buffer".
  const u8 = (a) => new Uint8Array(a.buffer);
  const done = await k.GetQueuedCompletionStatus(
    pipe.port,
    u8(bytes),
    u8(key),
    u8(povl),
    0xffffffff,
  );
  if (!done) throw new Error(`write failed: ${k.GetLastError()}`);
  return bytes[0];
}

export function close(pipe) {
  k.CloseHandle(pipe.handle);
  k.CloseHandle(pipe.port);
}
