// child.mjs without node:net, for Deno versions whose node:net cannot serve a Windows pipe
// (2.2.3): CreateNamedPipeW (blocking handle), ConnectNamedPipe and ReadFile as `nonblocking`
// FFI calls (each on a blocking-pool thread), 4 KiB per read at 4 KiB per 1 ms, until the end
// of the stream. Prints the byte count on stdout and exits 0, or 3 if it is not the one expected.
//
//   deno run -A child_ffi.mjs PIPE_NAME EXPECTED_BYTES
const k32 = Deno.dlopen("kernel32.dll", {
  CreateNamedPipeW: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "u32", "u32", "usize"],
    result: "usize",
  },
  ConnectNamedPipe: { parameters: ["usize", "usize"], result: "i32", nonblocking: true },
  ReadFile: {
    parameters: ["usize", "buffer", "u32", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  CloseHandle: { parameters: ["usize"], result: "i32" },
});
const k = k32.symbols;
const [name, expectedArg] = Deno.args;
const wide = (s) => {
  const b = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return new Uint8Array(b.buffer);
};
// PIPE_ACCESS_INBOUND, byte mode, one instance, 64 KiB buffers.
const pipe = k.CreateNamedPipeW(wide(name), 0x1, 0, 1, 65536, 65536, 0, 0n);
console.log("listening");
await k.ConnectNamedPipe(pipe, 0n);
const buf = new Uint8Array(4096);
const n = new Uint32Array(1);
let received = 0;
const t0 = performance.now();
for (let reads = 0;; reads++) {
  const due = t0 + reads - performance.now();
  if (due > 0) await new Promise((r) => setTimeout(r, due));
  if (!(await k.ReadFile(pipe, buf, buf.length, new Uint8Array(n.buffer), 0n))) break;
  received += n[0];
}
k.CloseHandle(pipe);
console.log(`received ${received}`);
Deno.exitCode = received === Number(expectedArg) ? 0 : 3;
