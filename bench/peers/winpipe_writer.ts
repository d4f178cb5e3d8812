// winpipe's writer (in Deno or Bun) writing TOTAL bytes in CHUNK-byte writes to a named pipe,
// honouring backpressure, the same loop as the node:net writer.
import process from "node:process";
import { PipeWriter } from "../../mod.ts";

const [pipeName, chunkArg, totalArg] = process.argv.slice(2);
const chunk = new Uint8Array(Number(chunkArg)).fill(0x5a);
const total = Number(totalArg);
const w = await PipeWriter.open(pipeName, { wait: true });
let sent = 0;
while (sent < total) {
  const n = Math.min(chunk.length, total - sent);
  const ok = w.write(n === chunk.length ? chunk : chunk.subarray(0, n));
  sent += n;
  if (!ok) await new Promise((r) => w.addEventListener("drain", r, { once: true }));
}
await w.close();
