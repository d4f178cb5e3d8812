// Round-trip server, winpipe (Deno or Bun): echoes every byte back.
import { writeFileSync } from "node:fs";
import process from "node:process";
import { listen } from "../../mod.ts";

const [pipeName, readyFile] = process.argv.slice(2);
const server = listen(pipeName);
writeFileSync(readyFile, "ready");
for await (const conn of server) {
  conn.readable.pipeTo(conn.writable).catch(() => {}).finally(() => conn.close());
}
