// The README's echo server (tests/win/peers/echo_server.ts, the README's code) in a child process
// of the runtime under test, against clients that misbehave: many that write a line and leave
// without reading the reply, one that writes far more than the pipe holds without ever reading and
// then leaves, and one (a child process) killed by its pid mid-stream. Then a well-behaved client
// must still get its line back, the server process must still be running, and its stderr must show
// no unhandled rejection or uncaught error.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { connect } from "../../mod.ts";
import { type Exited, scriptCommand, start, waitForOutput, withDir } from "./child.ts";
import { sleep, uniqueName, within } from "./server_end.ts";

const MiB = 1024 * 1024;
const STEP_MS = 20_000;
const peer = (file: string) => scriptCommand(resolve("tests", "win", "peers", file), ["-A"]);
/**
 * What the runtimes print for an error nobody handled: Deno "error: Uncaught (in promise) …", Bun
 * the error, then its version line ("Bun v1.4.5 (Windows x64)"); and a Rust panic.
 */
const UNHANDLED = /uncaught|unhandled|panicked|^Bun v\d/im;

/** Reads until a newline has come (or the stream ends); the text read. */
async function readLine(readable: ReadableStream<Uint8Array>): Promise<string> {
  const reader = readable.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

test(
  "the README's echo server survives clients that leave without reading, never read, or are killed, and still echoes",
  { timeout: 240_000 },
  () =>
    withDir("echo-server", async (dir) => {
      const name = uniqueName("readme-echo");
      const [exe, args] = peer("echo_server.ts");
      const server = start(exe, [...args, name], dir, 200_000, { detached: true });
      let ended: Exited | undefined;
      server.exited.then((e) => (ended = e), () => {});
      /** Fails, with the server's output, if the server process has ended. */
      const assertAlive = (when: string) => {
        if (ended) {
          assert.fail(
            `the server process ended (exit ${ended.code}) ${when}; its stderr:\n${
              ended.stderr.slice(-4000)
            }`,
          );
        }
      };
      /** Runs one client's part; a failure says first whether the server had died meanwhile. */
      const step = async (what: string, body: () => Promise<void>) => {
        try {
          await within(STEP_MS, body(), what);
        } catch (e) {
          await Promise.race([server.exited.catch(() => {}), sleep(2_000)]);
          assertAlive(`during ${what}`);
          throw e;
        }
        assertAlive(`after ${what}`);
      };
      try {
        await waitForOutput(server, "listening", 60_000);

        // (a) A line out, then gone without reading the echo, which may or may not have been
        // written yet: many times, so that the server's echo meets a closed pipe.
        await step("clients that write a line and leave without reading", async () => {
          for (let i = 0; i < 30; i++) {
            const c = await connect(name, { timeout: 5_000 });
            c.writer!.write(`line ${i}\n`);
            await c.close();
          }
        });

        // (b) 4 MiB written and never read. The server's echo fills this end's in-buffer, then
        // its writer's queue (1 MiB), then stops reading, so the writes stall here. Then this
        // client stops its writes (bounded: stop() waits at most 2 s) and leaves, while the
        // server's pipeTo waits on backpressure.
        await step("a client that writes 4 MiB, never reads, and leaves", async () => {
          const c = await connect(name, { timeout: 5_000 });
          const block = new Uint8Array(64 * 1024).fill(0x62);
          for (let n = 0; n < 4 * MiB; n += block.byteLength) c.writer!.write(block);
          // Until nothing moves for 500 ms (bounded by the step's limit).
          for (let last = -1; c.writer!.bytesToWrite !== last;) {
            last = c.writer!.bytesToWrite;
            await sleep(500);
          }
          assert.ok(c.writer!.bytesToWrite > 0, "the writes stalled: the server stopped reading");
          await c.writer!.stop();
          await c.close();
        });

        // (c) A child process that streams (writes and reads the echo), killed by its pid.
        await step("a client killed mid-stream", async () => {
          const [sExe, sArgs] = peer("echo_streamer.ts");
          const streamer = start(sExe, [...sArgs, name], dir, STEP_MS, { detached: true });
          try {
            await waitForOutput(streamer, "streaming", STEP_MS / 2);
          } finally {
            try {
              process.kill(streamer.pid!);
            } catch {
              // Already gone: its exit says how.
            }
          }
          const gone = await streamer.exited;
          assert.equal(gone.timedOut, false, "the streamer was killed, not timed out");
        });

        // (d) A well-behaved client: its line comes back.
        await step("a client that writes a line and reads the echo", async () => {
          const c = await connect(name, { timeout: 5_000 });
          c.writer!.write("hello\n");
          assert.equal(await readLine(c.readable), "hello\n");
          await c.close();
        });

        // A rejection left unhandled by a connection's end would have ended it by now.
        await Promise.race([server.exited.catch(() => {}), sleep(1_000)]);
        assertAlive("at the end");
      } finally {
        if (!ended) process.kill(server.pid!);
        // Its output files are in dir, removed next.
        await Promise.race([server.exited.catch(() => {}), sleep(STEP_MS)]);
      }
      const exit = await within(STEP_MS, server.exited, "the server's exit after the kill");
      assert.doesNotMatch(
        exit.stderr,
        UNHANDLED,
        `the server's stderr shows an error nobody handled:\n${exit.stderr.slice(-4000)}`,
      );
    }),
);
