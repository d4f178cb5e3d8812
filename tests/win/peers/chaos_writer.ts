/**
 * The chaos run's client that dies mid-stream: it connects, sends its header, then writes its
 * seed's stream in random-sized chunks until the chaos process kills it by its pid. With ECHO
 * (1) the server echoes, and it reads the echo and checks every byte meanwhile, so the server's
 * writes are in flight when it dies. It never ends by itself before LIFETIME_MS; if it is still
 * alive then, or anything fails (a wrong echo byte too), it says so in LOG and exits non-zero,
 * which the chaos process reports.
 *
 *   <runtime> tests/win/peers/chaos_writer.ts PIPE_NAME CLIENT_ID STREAM_SEED ECHO LOG
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import { connect } from "../../../mod.ts";
import { ByteStream, DIE_ECHO, encodeHeader, mix, Rng } from "./chaos_protocol.ts";

const LIFETIME_MS = 60_000;
const MAX_CHUNK = 256 * 1024;

const [name, idArg, seedArg, echoArg, log] = process.argv.slice(2);
const clientId = Number(idArg);
const seed = Number(seedArg) >>> 0;
const echo = echoArg === "1";

try {
  const conn = await connect(name, { timeout: 20_000 });
  const w = conn.writer!;
  const variant = echo ? DIE_ECHO : 0;
  w.write(encodeHeader({ clientId, seed, mode: "die", total: null, cut: 0, variant }));
  await w.flush();
  if (echo) void checkEcho(conn.readable);
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

/** Reads the echo to its end, checking every byte; a wrong one is reported and ends the process. */
async function checkEcho(readable: ReadableStream<Uint8Array>): Promise<void> {
  const expected = new ByteStream(seed);
  try {
    const reader = readable.getReader();
    for (let r; !(r = await reader.read()).done;) {
      const bad = expected.check(r.value);
      if (bad) {
        throw new Error(
          `echo byte ${bad.position} is ${bad.got}, expected ${bad.expected} (seed ${seed})`,
        );
      }
    }
  } catch (e) {
    writeFileSync(log, `client #${clientId}: ${(e as Error)?.stack ?? e}`);
    process.exit(4);
  }
}
