// The chaos run: for a bounded time, clients connect, write, cancel, close and die mid-stream
// against one server that checks every byte (tests/win/peers/chaos_server.ts, in its own process
// of this runtime). Afterwards its handle count must be back at the baseline, and it must exit by
// itself: nothing left open.
//
// WINPIPE_CHAOS_SECONDS (default 60) sets the duration, WINPIPE_CHAOS_SEED (default 1) the seed;
// every failure names both, and how to run it again.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { sleep } from "./server_end.ts";

const SECONDS = Number(process.env.WINPIPE_CHAOS_SECONDS || 60);
const SEED = Number(process.env.WINPIPE_CHAOS_SEED || 1) >>> 0;
/** Beyond the duration: start-up, the warm-up's dying client, the end of the run, the exit. */
const GRACE_S = 60;
/** Once the result is written, the process must be gone within this. */
const EXIT_MS = 20_000;
const isDeno = "Deno" in globalThis;
const script = fileURLToPath(new URL("./peers/chaos_server.ts", import.meta.url).href);

const again = `WINPIPE_CHAOS_SEED=${SEED} WINPIPE_CHAOS_SECONDS=${SECONDS} bash scripts/wine.sh ${
  isDeno ? "deno test -A" : "bun test --timeout 300000"
} tests/win/chaos.test.ts`;

interface ChaosResult {
  ok: boolean;
  seed: number;
  seconds: number;
  runtime: string;
  elapsedMs: number;
  neverRan: string[];
  clients: Record<string, number>;
  warmupClients: number;
  smallBufferClients: number;
  server: Record<string, number | Record<string, number>> & { bytesVerified: number };
  clientSide: Record<string, number>;
  children: Record<string, number>;
  errors: Record<string, number>;
  handles: {
    baseline: number;
    end: number[];
    baselineByType: Record<string, number>;
    endByType: Record<string, number>;
    difference: string[];
    notCompared: string[];
  };
  failures: string[];
}

function summary(r: ChaosResult, exitSeconds: string): string {
  const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
  const clients = Object.entries(r.clients).map(([m, n]) => `${m} ${n}`).join(", ");
  const total = Object.values(r.clients).reduce((a, b) => a + b, 0);
  const errors = Object.entries(r.errors).map(([k, n]) => `${k} x${n}`).join(", ") || "none";
  const c = r.children;
  return `chaos ${r.runtime}, seed ${r.seed}, ${r.seconds} s: ${total} clients (${clients}; `
    + `${r.smallBufferClients} of them on 4 KiB buffers); `
    + `server: ${r.server.connections} connections (${r.server.empty} empty), `
    + `${MiB(r.server.bytesVerified)} verified, ${MiB(r.server.bytesEchoed as number)} echoed, `
    + `${r.server.drops} drops (${r.server.dropsWithReadInFlight} with a read in flight); `
    + `reader.cancel() handed back ${r.server.cancelLeftoverBytes} B (server) and `
    + `${r.clientSide.readerCancelLeftoverBytes} B (clients); `
    + `${r.clientSide.readsEndedByDrop} client reads ended by a drop; `
    + `${r.clientSide.lateSuccessBytes} B written by writes that completed after their failure; `
    + `${r.clientSide.busyRetries} connects waited out ERROR_PIPE_BUSY past 15 s while others were served; `
    + `children killed ${c.killed} (${c.killedMidStream} mid-stream, ${c.killedBeforeHeader} `
    + `before their header, ${c.withEcho} of all reading an echo); `
    + `expected errors: ${errors}; `
    + `handles ${r.handles.baseline} -> ${r.handles.end.at(-1)} (${
      r.handles.difference.length ? `differ: ${r.handles.difference}` : "every type as before"
    }${
      r.handles.notCompared.map((t) =>
        `; ${t} not compared: ${r.handles.baselineByType[t] ?? 0} -> ${r.handles.endByType[t] ?? 0}`
      ).join("")
    }); exited by itself after ${exitSeconds} s`;
}

test(
  `chaos: ${SECONDS} s of clients that write, cancel, close and die; every byte checked, nothing left open`,
  {
    timeout: (SECONDS + GRACE_S + 60) * 1000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "winpipe-chaos-"));
    const resultFile = join(dir, "result.json");
    const t0 = Date.now();
    // stdio "ignore", never "pipe": under Wine, deno.exe panics in mio with piped child stdio.
    // detached: no console, so no conhost.exe that a kill could leave behind (chaos_server.ts).
    const child = spawn(
      process.execPath,
      [...(isDeno ? ["run", "-A"] : []), script, resultFile, String(SEED), String(SECONDS)],
      { stdio: "ignore", detached: true },
    );
    let exit: { code: number | null; signal: string | null } | undefined;
    const exited = new Promise<void>((resolve) => {
      child.on("exit", (code, signal) => (exit = { code, signal }, resolve()));
      child.on(
        "error",
        (e) => (exit = { code: null, signal: `spawn error: ${e.message}` }, resolve()),
      );
    });
    const fail = (what: string) =>
      `${what}\n  seed ${SEED}, ${SECONDS} s; run it again with: ${again}`;
    try {
      // Wait for the exit: at most the duration plus GRACE_S, and EXIT_MS once the result exists.
      const limit = t0 + (SECONDS + GRACE_S) * 1000;
      let resultAt: number | undefined;
      while (exit === undefined && Date.now() < limit) {
        if (resultAt === undefined && existsSync(resultFile)) resultAt = Date.now();
        if (resultAt !== undefined && Date.now() - resultAt > EXIT_MS) break;
        await Promise.race([exited, sleep(250)]);
      }
      const result: ChaosResult | undefined = existsSync(resultFile)
        ? JSON.parse(readFileSync(resultFile, "utf8"))
        : undefined;
      const listed = result?.failures.length
        ? `\n  its failures:\n    ${result.failures.join("\n    ")}`
        : "";
      if (exit === undefined) {
        process.kill(child.pid!);
        await Promise.race([exited, sleep(10_000)]);
        assert.fail(fail(
          result
            ? `the chaos process wrote its result but did not exit by itself within ${
              EXIT_MS / 1000
            } s: something is still open (a pipe, a handle, a timer). Killed it.${listed}`
            : `the chaos process neither finished nor wrote a result within ${
              SECONDS + GRACE_S
            } s. Killed it.`,
        ));
      }
      assert.ok(result, fail(`the chaos process exited (${JSON.stringify(exit)}) with no result`));
      const exitSeconds = ((Date.now() - t0) / 1000).toFixed(1);
      console.log(summary(result, exitSeconds));
      assert.deepEqual(result.failures, [], fail(`the chaos run failed:${listed}`));
      assert.deepEqual(result.neverRan, [], fail(`behaviours that never ran: ${result.neverRan}`));
      assert.deepEqual(
        result.handles.difference,
        [],
        fail(`handles after the run differ from the baseline: ${result.handles.difference}`),
      );
      assert.equal(exit!.code, 0, fail(`the chaos process exited with ${JSON.stringify(exit)}`));
      assert.ok(result.ok, fail("the chaos run says it failed"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
