// The loop that crashed deno.exe under Wine (docs/upstream/deno-named-pipe-panic.md), with
// winpipe's PipeWriter as the writer and the child's stdio NOT piped: 200 rounds of a child
// process (this runtime) that serves a pipe and reads 4 KiB per 1 ms, PipeWriter.open, 4 MiB in
// 3,000-byte chunks with backpressure, close, the child's exit. Every byte must arrive, and no
// process may crash. A crash is named as such: the exit code, and "Deno panic in mio's named
// pipe" when the child's stderr file holds the panic's signature.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { PipeWriter } from "../../mod.ts";
import { scriptCommand } from "./child.ts";
import { Pattern, uniqueName, within } from "./server_end.ts";

const ROUNDS = 200;
const TOTAL = 4 * 1024 * 1024;
const CHUNK = 3000;
const script = fileURLToPath(new URL("./peers/slow_reader.ts", import.meta.url).href);
// Same pattern as scripts/test.mjs looks for in a suite's output.
const MIO_PANIC =
  /panicked at [^\n]*mio-[0-9.]+[\\/]src[\\/]sys[\\/]windows[\\/]named_pipe\.rs:\d+:\d+[^\n]*/;

/** An exit code as Windows shows it, e.g. 3221226505 (0xC0000409). */
const describeCode = (code: number | null, signal: string | null) =>
  code === null ? `signal ${signal}` : `${code} (0x${(code >>> 0).toString(16).toUpperCase()})`;

test(
  `${ROUNDS} rounds: child process reading 4 KiB/ms, PipeWriter writing 4 MiB in ${CHUNK} B chunks; no crash, every byte`,
  { timeout: 1_200_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "winpipe-slow-child-"));
    const pattern = new Pattern(11);
    const t0 = performance.now();
    let slowest = 0;
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const r0 = performance.now();
        const name = uniqueName("slow-child");
        const resultFile = join(dir, `result-${round}.json`);
        const stderrFile = join(dir, `child-${round}.stderr`);
        const err = openSync(stderrFile, "w");
        // stdio ignored or in a file, never piped; detached: Wine gives it no console.
        const [exe, args] = scriptCommand(script, ["-A"]);
        const child = spawn(exe, [...args, name, resultFile], {
          stdio: ["ignore", "ignore", err],
          detached: true,
        });
        closeSync(err);
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
          child.on("exit", (code, signal) => resolve({ code, signal }));
          child.on("error", (e) => resolve({ code: null, signal: `spawn error: ${e.message}` }));
        });
        const crash = async (what: string): Promise<never> => {
          const exit = await Promise.race([
            exited,
            new Promise<null>((r) => setTimeout(r, 5000, null)),
          ]);
          if (exit === null) child.kill();
          const stderr = readFileSync(stderrFile, "utf8");
          const panic = stderr.match(MIO_PANIC);
          assert.fail(
            `round ${round} of ${ROUNDS}: ${what}; the child ${
              exit
                ? `exited with ${describeCode(exit.code, exit.signal)}`
                : "was still running (killed)"
            }${
              panic
                ? `\n  Deno panic in mio's named pipe (see docs/upstream/deno-named-pipe-panic.md): ${
                  panic[0].trim()
                }`
                : ""
            }${stderr.trim() ? `\n  child's stderr:\n${stderr.trim().slice(0, 2000)}` : ""}`,
          );
        };

        // A child that dies before it serves its pipe fails the round at once.
        const opening = PipeWriter.open(name, { wait: true, timeout: 30_000 });
        let opened: PipeWriter | null;
        try {
          opened = await Promise.race([opening, exited.then(() => null)]);
        } catch (e) {
          return await crash(`PipeWriter.open failed: ${(e as Error).message}`);
        }
        if (!opened) {
          opening.then((w) => w.stop(), () => {});
          return await crash("the child exited before serving its pipe");
        }
        const writer = opened;
        try {
          for (let position = 0; position < TOTAL; position += CHUNK) {
            if (!writer.write(pattern.at(position, Math.min(CHUNK, TOTAL - position)))) {
              await new Promise<void>((resolve) => {
                const done = () => {
                  writer.removeEventListener("drain", done);
                  writer.removeEventListener("error", done);
                  resolve();
                };
                writer.addEventListener("drain", done);
                writer.addEventListener("error", done);
              });
              if (writer.error) throw writer.error;
            }
          }
          await writer.close();
        } catch (e) {
          await writer.stop().catch(() => {});
          return await crash(`writing failed: ${(e as Error).message}`);
        }

        const exit = await within(60_000, exited, `round ${round}: the child's exit`).catch(() =>
          null
        );
        if (!exit || exit.code !== 0) {
          return await crash(
            exit ? "the child did not exit with 0" : "the child did not exit within 60 s",
          );
        }
        const result = JSON.parse(readFileSync(resultFile, "utf8"));
        assert.equal(result.error, null, `round ${round}: the child failed: ${result.error}`);
        assert.equal(
          result.bytes,
          TOTAL,
          `round ${round}: the child received ${result.bytes} of ${TOTAL} bytes`,
        );
        rmSync(resultFile);
        rmSync(stderrFile);
        slowest = Math.max(slowest, performance.now() - r0);
      }
      const seconds = (performance.now() - t0) / 1000;
      console.log(
        `slow child: ${ROUNDS} rounds of ${TOTAL} B in ${seconds.toFixed(1)} s `
          + `(${(seconds / ROUNDS).toFixed(2)} s a round, slowest ${
            (slowest / 1000).toFixed(2)
          } s), no crash`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
