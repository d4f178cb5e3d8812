// A probe of the completion-port contract that mio's named pipes rely on, with no Deno pipe code:
// it issues reads the way mio 1.0.x does (ReadFile on an overlapped pipe handle bound to a
// completion port, then GetOverlappedResult with bWait = FALSE) while another thread closes the
// client end, and counts, per outcome of that pair of calls, how many completion packets arrive.
//
//   deno run -A iocp_probe.mjs [ROUNDS]
//
// What Windows documents: a packet is queued if and only if ReadFile returned TRUE or failed with
// ERROR_IO_PENDING (the handle has no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS). mio 1.0.3 treats an
// error from the GetOverlappedResult that follows a pending ReadFile as "no packet will come"; a
// packet that comes anyway reaches read_done with the read state not Pending (line 871).
const k32 = Deno.dlopen("kernel32.dll", {
  CreateNamedPipeW: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "u32", "u32", "usize"],
    result: "usize",
  },
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "usize", "u32", "u32", "usize"],
    result: "usize",
  },
  CreateIoCompletionPort: { parameters: ["usize", "usize", "usize", "u32"], result: "usize" },
  ReadFile: { parameters: ["usize", "buffer", "u32", "usize", "buffer"], result: "i32" },
  GetOverlappedResult: { parameters: ["usize", "buffer", "buffer", "i32"], result: "i32" },
  GetQueuedCompletionStatus: {
    parameters: ["usize", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  CloseHandle: { parameters: ["usize"], result: "i32" },
  CloseHandleOnPool: {
    name: "CloseHandle",
    parameters: ["usize"],
    result: "i32",
    nonblocking: true,
  },
  GetLastError: { parameters: [], result: "u32" },
});
const k = k32.symbols;
const INVALID = 0xffff_ffff_ffff_ffffn;
const ERROR_IO_PENDING = 997, ERROR_IO_INCOMPLETE = 996, WAIT_TIMEOUT = 258;
const wide = (s) => {
  const b = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return new Uint8Array(b.buffer);
};

const rounds = Number(Deno.args[0] ?? 2000);
const port = k.CreateIoCompletionPort(INVALID, 0n, 0n, 1);
const buf = new Uint8Array(4096);
const bytes = new Uint8Array(4), key = new BigUint64Array(1), ovOut = new BigUint64Array(1);
const counts = {}; // outcome -> { ops, packets }
const note = (outcome, packets) => {
  const c = (counts[outcome] ??= { ops: 0, packets: 0, withoutPacket: 0, extra: 0 });
  c.ops++;
  c.packets += packets;
  if (packets === 0) c.withoutPacket++;
  if (packets > 1) c.extra += packets - 1;
};
/** Collects the packets queued for `ov` within `ms`. */
function packetsFor(ov, ms) {
  let n = 0;
  for (;;) {
    const ok = k.GetQueuedCompletionStatus(
      port,
      bytes,
      new Uint8Array(key.buffer),
      new Uint8Array(ovOut.buffer),
      ms,
    );
    if (!ok && ovOut[0] === 0n) return n; // timed out
    if (ovOut[0] === BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ov)))) n++;
    ms = 20; // after the first packet, wait a little more for a duplicate
  }
}

for (let r = 0; r < rounds; r++) {
  const name = wide(`\\\\.\\pipe\\iocp-probe-${Deno.pid}-${r}`);
  const server = k.CreateNamedPipeW(name, 0x3 | 0x40000000, 0, 1, 65536, 65536, 0, 0n);
  const client = k.CreateFileW(name, 0xc0000000, 0, 0n, 3, 0, 0n);
  if (server === INVALID || client === INVALID) {
    throw new Error(`setup failed: ${k.GetLastError()}`);
  }
  k.CreateIoCompletionPort(server, port, 1n, 0);
  // Close the client on another thread (a blocking-pool thread), racing the reads below.
  const closing = k.CloseHandleOnPool(client);
  const spin = r % 50;
  for (let i = 0, x = 0; i < spin * 20; i++) x += i;
  for (;;) {
    const ov = new Uint8Array(32);
    const ok = k.ReadFile(server, buf, buf.length, 0n, ov);
    const readErr = ok ? 0 : k.GetLastError();
    if (!ok && readErr !== ERROR_IO_PENDING) {
      // Failed synchronously: no packet may come.
      note(`ReadFile failed at once (${readErr})`, packetsFor(ov, 50));
      break;
    }
    const n = new Uint8Array(4);
    const gor = k.GetOverlappedResult(server, ov, n, 0);
    const gorErr = gor ? 0 : k.GetLastError();
    const outcome = ok
      ? `ReadFile TRUE, GetOverlappedResult ${gor ? "TRUE" : gorErr}`
      : gor
      ? "ReadFile pending, GetOverlappedResult TRUE"
      : gorErr === ERROR_IO_INCOMPLETE
      ? "ReadFile pending, GetOverlappedResult 996 (incomplete)"
      : `ReadFile pending, GetOverlappedResult FAILED ${gorErr} (mio: Err, expects no packet)`;
    note(outcome, packetsFor(ov, 2000));
  }
  await closing;
  k.CloseHandle(server);
}
console.log(`rounds ${rounds}`);
for (const [outcome, c] of Object.entries(counts)) {
  console.log(
    `${outcome}: ops ${c.ops}, packets ${c.packets}, ops without a packet ${c.withoutPacket}, extra packets ${c.extra}`,
  );
}
