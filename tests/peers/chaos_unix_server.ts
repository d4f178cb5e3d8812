// The server of the Unix-socket chaos run (tests/chaos_unix.test.ts), in its own process: every
// connection starts with a header (id, length, echo flag), then `length` bytes of the id's
// pattern, each byte checked; with the echo flag every byte goes back as it comes. A connection
// may end early (its client was stopped, dropped or killed): what came must still be a correct
// prefix. The descriptor count is taken once a warm-up connection has come and gone, and again
// when the test says stop, before the listener closes. The result goes to RESULT; then the
// process must end by itself (no process.exit), so that anything left open keeps it alive.
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import process from "node:process";
import { listen, type PipeConnection } from "../../mod.ts";
import { HEADER, pattern, STOP } from "./chaos_unix_protocol.ts";

const [path, resultFile] = process.argv.slice(2);
const fdDir = existsSync("/proc/self/fd") ? "/proc/self/fd" : "/dev/fd";
const fds = () => readdirSync(fdDir).length;
/**
 * Linux: this process's descriptors that are sockets at our path (the listener, and every
 * connection it accepted). The runtimes make descriptors of their own as they go (Deno a
 * socketpair, measured), so the total alone cannot tell a leak; this count can.
 */
function ours(): number | undefined {
  if (fdDir !== "/proc/self/fd") return undefined;
  const inodes = new Set<string>();
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[7] === path) inodes.add(f[6]);
  }
  let n = 0;
  for (const fd of readdirSync(fdDir)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${fdDir}/${fd}`));
      if (m && inodes.has(m[1])) n++;
    } catch {
      // gone meanwhile (readdir's own descriptor)
    }
  }
  return n;
}
const failures: string[] = [];
const seen = new Map<number, { bytes: number; complete: boolean; echo: boolean }>();
const handlers = new Set<Promise<void>>();
/** Where each connection's handler is, for the report when one does not finish. */
const stages = new Map<number, () => string>();
let nextConnection = 0;
let baseline = -1;
process.on("unhandledRejection", (e) => failures.push(`unhandled rejection: ${e}`));

async function serve(conn: PipeConnection): Promise<void> {
  const me = ++nextConnection;
  let stage = "reading";
  stages.set(
    me,
    () =>
      `connection ${me} (id ${id}, ${got} of ${length} bytes, echo ${echo}): ${stage}; writer `
      + `${conn.writer?.bytesToWrite} bytes to write, error ${conn.writer?.error?.code ?? "none"}`,
  );
  const reader = conn.readable.getReader();
  let header = new Uint8Array(0);
  let id = -1;
  let length = 0;
  let echo = false;
  let got = 0;
  let gen: ReturnType<typeof pattern> | undefined;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      let chunk = r.value;
      if (id < 0) {
        const all = new Uint8Array(header.byteLength + chunk.byteLength);
        all.set(header);
        all.set(chunk, header.byteLength);
        if (all.byteLength < HEADER) {
          header = all;
          continue;
        }
        const view = new DataView(all.buffer, all.byteOffset, HEADER);
        id = view.getUint32(0, true);
        length = view.getUint32(4, true);
        echo = view.getUint8(8) === 1;
        if (id === STOP) {
          void server.close(); // the for await below ends; handed-out connections stay open
          break;
        }
        gen = pattern(id);
        seen.set(id, { bytes: 0, complete: length === 0, echo });
        chunk = all.subarray(HEADER);
      }
      for (let i = 0; i < chunk.byteLength; i++) {
        if (chunk[i] !== gen!()) {
          failures.push(`connection ${id}: byte ${got + i} is wrong`);
          await conn.close().catch(() => {});
          return;
        }
      }
      got += chunk.byteLength;
      seen.get(id)!.bytes = got;
      if (got > length) failures.push(`connection ${id}: ${got} bytes, ${length} announced`);
      if (echo && chunk.byteLength > 0 && conn.writer && !conn.writer.error) {
        if (!conn.writer.write(chunk)) {
          stage = "flushing the echo";
          await conn.writer.flush().catch(() => {});
          stage = "reading";
        }
      }
      if (got === length) seen.get(id)!.complete = true;
    }
  } catch {
    // the client went: what came was checked
  } finally {
    reader.releaseLock();
    stage = "closing";
    await conn.close().catch(() => {}); // resolves when the peer has gone, as documented
    stages.delete(me);
  }
}

const server = listen(path);
let connections = 0;
for await (const conn of server) {
  connections++;
  const h = serve(conn);
  handlers.add(h);
  void h.finally(() => handlers.delete(h));
  if (baseline < 0) {
    // The warm-up connection: once it has gone, everything lazily made exists.
    await h;
    await new Promise((r) => setTimeout(r, 300));
    baseline = fds();
    writeFileSync(`${resultFile}.ready`, "ready");
  }
}
// The stop connection closed the server; wait for the connections still being served, saying
// which are slow.
const slow = setTimeout(() => {
  for (const say of stages.values()) console.error(`chaos server, 5 s after the stop: ${say()}`);
}, 5_000);
await Promise.all([...handlers]);
clearTimeout(slow);
await new Promise((r) => setTimeout(r, 300));
const end = fds();
const left = ours();
if (left === undefined) {
  // macOS: the total, less the listener's, with room for a pair of the runtime's own.
  if (end > baseline + 1) {
    failures.push(`descriptors: ${baseline} at the baseline, ${end} at the end`);
  }
} else if (left > 0) {
  failures.push(`${left} descriptors of sockets at ${path} are still open (${baseline} -> ${end})`);
}
writeFileSync(
  resultFile,
  JSON.stringify({
    runtime: "Deno" in globalThis ? "deno" : "bun",
    connections,
    baseline,
    end,
    seen: Object.fromEntries(seen),
    left,
    failures,
  }),
);
