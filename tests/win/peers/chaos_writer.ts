/**
 * The chaos run's client that dies mid-stream: it connects, sends its header, then writes its
 * seed's stream in random-sized chunks until the chaos process kills it by its pid. It never ends
 * by itself before LIFETIME_MS; if it is still alive then, or anything fails, it says so in LOG
 * and exits non-zero, which the chaos process reports.
 *
 *   <runtime> tests/win/peers/chaos_writer.ts PIPE_NAME CLIENT_ID STREAM_SEED LOG
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import { connect } from "../../../mod.ts";
import { ByteStream, encodeHeader, mix, Rng } from "./chaos_protocol.ts";

const LIFETIME_MS = 60_000;
const MAX_CHUNK = 256 * 1024;

const [name, idArg, seedArg, log] = process.argv.slice(2);
const clientId = Number(idArg);
const seed = Number(seedArg) >>> 0;

try {
  const conn = await connect(name, { timeout: 20_000 });
  const w = conn.writer!;
  w.write(encodeHeader({ clientId, seed, mode: "die", total: null, cut: 0, variant: 0 }));
  await w.flush();
  const stream = new ByteStream(seed);
  const rng = new Rng(mix(seed, 0xd1e));
  const scratch = new Uint8Array(MAX_CHUNK);
  const end = Date.now() + LIFETIME_MS;
  while (Date.now() < end) {
    if (!w.write(stream.next(rng.size(MAX_CHUNK), scratch))) await w.flush();
  }
  writeFileSync(log, `still alive after ${LIFETIME_MS} ms: nobody killed it`);
  await conn.close();
  process.exitCode = 3;
} catch (e) {
  writeFileSync(log, `client #${clientId} failed: ${(e as Error)?.stack ?? e}`);
  process.exitCode = 2;
}
