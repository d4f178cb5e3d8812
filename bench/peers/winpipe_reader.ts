// winpipe's reader (Deno or Bun) as the reading end: listens, reads EXPECTED bytes from one
// client, appends {bytes, ms} to the result file (ms from the connection to the last byte).
import { appendFileSync } from "node:fs";
import process from "node:process";
import { listen } from "../../mod.ts";

const [pipeName, resultFile, expectedArg] = process.argv.slice(2);
const expected = Number(expectedArg);
const server = listen(pipeName);
appendFileSync(resultFile, JSON.stringify({ ready: true }) + "\n");
const conn = (await server.accept())!;
const t0 = performance.now();
const reader = conn.readable.getReader();
let bytes = 0;
while (bytes < expected) {
  const r = await reader.read();
  if (r.done) break;
  bytes += r.value.byteLength;
}
appendFileSync(resultFile, JSON.stringify({ bytes, ms: performance.now() - t0 }) + "\n");
reader.releaseLock();
await conn.close();
await server.close();
process.exit(0);
