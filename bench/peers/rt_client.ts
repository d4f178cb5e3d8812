// Round-trip client, winpipe (Deno or Bun): COUNT request/response exchanges of SIZE bytes, read
// with conn.read(p) into one buffer, as the runtimes' own peers (unix_own.ts) read theirs.
import { appendFileSync } from "node:fs";
import process from "node:process";
import { connect } from "../../mod.ts";

const [pipeName, countArg, sizeArg, resultFile] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg);
const request = new Uint8Array(size).fill(0x61);
const conn = await connect(pipeName, { wait: true, timeout: 10_000 });
const response = new Uint8Array(64 * 1024);
const t0 = performance.now();
for (let i = 0; i < count; i++) {
  conn.writer!.write(request);
  for (let got = 0; got < size;) got += (await conn.read(response))!;
}
const ms = performance.now() - t0;
appendFileSync(resultFile, JSON.stringify({ roundTripsPerSec: count / (ms / 1000) }) + "\n");
await conn.close();
process.exit(0);
