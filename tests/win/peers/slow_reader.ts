/**
 * The child of tests/win/slow_child.test.ts: serves one pipe instance (winpipe's test server end,
 * FFI on the thread pool), takes one client, and reads it 4 KiB at a time at 4 KiB per 1 ms
 * (each read waits for its slot on that 1 ms grid; a late read does not push the later ones
 * back), checking every byte against the test pattern. At the end of the stream it writes
 * {bytes, error} to RESULT and exits 0, or 2 on any failure.
 *
 *   <runtime> tests/win/peers/slow_reader.ts PIPE_NAME RESULT
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import { Pattern, ServerEnd, sleep } from "../server_end.ts";

const [name, result] = process.argv.slice(2);
// Same seed as the test's writer.
const pattern = new Pattern(11);
const READ = 4096;

let bytes = 0;
try {
  const server = ServerEnd.create(name, {}, READ);
  await server.connect();
  const verify = pattern.verifier();
  const t0 = performance.now();
  for (let reads = 0;; reads++) {
    const due = t0 + reads - performance.now();
    if (due > 0) await sleep(due);
    const b = await server.read();
    if (b === null) break;
    verify.check(b);
    bytes += b.byteLength;
  }
  await server.close();
  writeFileSync(result, JSON.stringify({ bytes, error: null }));
} catch (e) {
  writeFileSync(result, JSON.stringify({ bytes, error: String((e as Error)?.stack ?? e) }));
  process.exitCode = 2;
}
