// Round-trip server, winpipe (Deno or Bun): echoes every byte back, as the node:net peer does
// (each chunk read is written back: a conn.read(p) loop into one buffer, like its on("data")
// loop, rather than pipeTo).
import { writeFileSync } from "node:fs";
import process from "node:process";
import { listen } from "../../mod.ts";
const [pipeName, readyFile] = process.argv.slice(2);
const server = listen(pipeName);
writeFileSync(readyFile, "ready");
for await (const conn of server) {
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    for (let n; (n = await conn.read(buf)) !== null;) conn.writer!.write(buf.subarray(0, n));
  })().catch(() => {}).finally(() => conn.close());
}
