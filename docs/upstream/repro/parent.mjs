// The parent: spawns child.mjs with piped stdio, connects to its pipe with node:net, writes
// 4 MiB in 3,000-byte chunks (waiting for 'drain'), closes, and waits for the child to exit.
// Repeats ITERATIONS times. With --ffi it also keeps one of Deno's blocking-pool threads busy
// in a foreign call (see ffi_activity.mjs) for the whole run.
//
//   deno run -A parent.mjs [ITERATIONS] [--ffi] [--ffi-writer] [--ffi-child] [--winpipe]
//
// --ffi-writer writes with raw FFI instead of node:net (ffi_writer.mjs): WriteFile on a handle
// bound to a completion port of its own, each completion taken by a `nonblocking`
// GetQueuedCompletionStatus on a blocking-pool thread. --ffi-child runs child_ffi.mjs instead of
// child.mjs (for Deno versions whose node:net cannot serve a Windows pipe).
//
// --winpipe is NOT part of the minimal reproduction: it imports winpipe itself (the repository's
// mod.ts) and writes with its PipeWriter (PipeWriter.open(name, { wait: true }), write() and
// 'drain', then close()), to measure how often the same loop panics with winpipe's completion
// path as the writer. Everything else, the child's piped stdio included, stays as it is. Without
// the flag this file imports nothing outside this folder.
//
// One line per iteration on stdout; the child's stderr is copied to this process's stderr, so a
// panic in either process ends up in this process's stderr file.
import { spawn } from "node:child_process";
import net from "node:net";
import process from "node:process";

const args = process.argv.slice(2);
const iterations = Number(args.find((a) => /^\d+$/.test(a)) ?? 25);
const ffi = args.includes("--ffi");
const ffiWriter = args.includes("--ffi-writer") ? await import("./ffi_writer.mjs") : null;
// Not part of the minimal reproduction (see above): winpipe's own writer.
const winpipe = args.includes("--winpipe") ? await import("../../../mod.ts") : null;
const TOTAL = 4 * 1024 * 1024;
const CHUNK = 3000;
const childScript = args.includes("--ffi-child") ? "./child_ffi.mjs" : "./child.mjs";
const child = new URL(childScript, import.meta.url).pathname.replace(/^\/([A-Za-z]:)/, "$1");

const stopFfi = ffi ? (await import("./ffi_activity.mjs")).start() : null;
// Under bun.exe (for --winpipe; Bun has no mio) the child is started with bun's command line.
const run = process.versions.bun ? [] : ["run", "-A"];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function connect(name) {
  for (let i = 0;; i++) {
    try {
      return await new Promise((resolve, reject) => {
        const s = net.connect(name, () => resolve(s));
        s.once("error", reject);
      });
    } catch (e) {
      if (i > 1000) throw e;
      await sleep(10);
    }
  }
}

let failures = 0;
for (let i = 1; i <= iterations; i++) {
  const name = `\\\\.\\pipe\\mio-repro-${process.pid}-${i}`;
  const t0 = Date.now();
  const proc = spawn(process.execPath, [...run, child, name, String(TOTAL)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (err += d));
  const exited = new Promise((r) => proc.on("close", (code, signal) => r(code ?? signal)));

  const chunk = new Uint8Array(CHUNK).fill(i & 0xff);
  if (ffiWriter) {
    const pipe = await ffiWriter.open(name);
    for (let sent = 0; sent < TOTAL;) {
      const n = Math.min(CHUNK, TOTAL - sent);
      sent += await ffiWriter.write(pipe, n === CHUNK ? chunk : chunk.subarray(0, n));
    }
    ffiWriter.close(pipe);
  } else if (winpipe) {
    // The same 10 s for the child to create its pipe as connect() below allows.
    const w = await winpipe.PipeWriter.open(name, { wait: true, timeout: 10_000 });
    for (let sent = 0; sent < TOTAL; sent += CHUNK) {
      const n = Math.min(CHUNK, TOTAL - sent);
      if (!w.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
        await new Promise((r) => w.addEventListener("drain", r, { once: true }));
      }
    }
    await w.close(); // flushes, then closes the handle: the child reads the end of the stream
  } else {
    const sock = await connect(name);
    for (let sent = 0; sent < TOTAL; sent += CHUNK) {
      const n = Math.min(CHUNK, TOTAL - sent);
      if (!sock.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
        await new Promise((r) => sock.once("drain", r));
      }
    }
    // A named pipe has no half-close: end() flushes, destroy() closes the handle, which the
    // child reads as the end of the stream.
    await new Promise((r) => sock.end(r));
    sock.destroy();
  }
  const code = await exited;
  const ok = code === 0 && out.includes(`received ${TOTAL}`);
  if (!ok) failures++;
  console.log(
    `iteration ${i}: child exit ${code}, ${out.trim().split("\n").pop()}, ${Date.now() - t0} ms${
      ok ? "" : " FAILED"
    }`,
  );
  if (err) process.stderr.write(`--- child stderr, iteration ${i}:\n${err}`);
}
stopFfi?.();
console.log(`${iterations - failures} of ${iterations} iterations passed`);
process.exitCode = failures ? 1 : 0;
