// Round-trip server, winpipe (Deno or Bun): echoes every byte back, as the node:net peer does
// (each chunk read is written back; a read loop rather than pipeTo, like its on("data") loop).
import { writeFileSync } from "node:fs";
import process from "node:process";
import { listen } from "../../mod.ts";
const [pipeName, readyFile] = process.argv.slice(2);
const server = listen(pipeName);
writeFileSync(readyFile, "ready");
for await (const conn of server) {
  (async () => {
    const r = conn.readable.getReader();
    for (let c; !(c = await r.read()).done;) conn.writer!.write(c.value);
  })().catch(() => {}).finally(() => conn.close());
}
