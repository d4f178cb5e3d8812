// Squatting: another process that wants the server's pipe name must never get it while the
// server lives, and a name another process holds is refused. The squatter is a second process
// (tests/win/peers/squatter.ts), because that is who would squat, and because Wine ignores
// FILE_FLAG_FIRST_PIPE_INSTANCE (measured), so only another process shows the real guard.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { FILE_FLAG_FIRST_PIPE_INSTANCE } from "../../ffi/kernel32.ts";
import { native } from "../../ffi/runtime.ts";
import { connect, listen, PipeError } from "../../mod.ts";
import { inject } from "./faults.ts";
import { sleep, uniqueName, within } from "./server_end.ts";

interface SquatResult {
  attempts: number;
  squatted: boolean;
  joins: number;
}

/** Starts the squatter in MODE on NAME; resolves once it is ready. */
async function squatter(mode: "hold" | "race", name: string, seconds = 120) {
  const dir = mkdtempSync(join(tmpdir(), "winpipe-squat-"));
  const script = join("tests", "win", "peers", "squatter.ts");
  const args = [mode, name, dir, String(seconds)];
  const child = spawn(
    process.execPath,
    process.versions.bun ? [script, ...args] : ["run", "-A", script, ...args],
    { stdio: "ignore" },
  );
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  for (let i = 0; !existsSync(join(dir, "ready")); i++) {
    if (i > 1500) throw new Error("the squatter did not start within 30 s");
    await sleep(20);
  }
  return {
    pid: child.pid!,
    ready: readFileSync(join(dir, "ready"), "utf8"),
    /** Stops it and returns what it did. */
    async stop(): Promise<SquatResult> {
      writeFileSync(join(dir, "stop"), "");
      assert.equal(await within(30_000, exited, "squatter exit"), 0, "the squatter's exit code");
      const result = JSON.parse(readFileSync(join(dir, "result"), "utf8"));
      rmSync(dir, { recursive: true, force: true });
      return result;
    },
  };
}

test("a name another process holds is refused by listen() (EADDRINUSE)", async () => {
  const name = uniqueName("held");
  const other = await squatter("hold", name);
  try {
    assert.equal(other.ready, "", "the other process holds the name");
    assert.throws(() => listen(name), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.syscall, "CreateNamedPipeW");
      assert.equal(e.code, "ERROR_ACCESS_DENIED");
      assert.match(e.message, /already in use \(EADDRINUSE\)/);
      return true;
    });
  } finally {
    await other.stop();
  }
  const mine = listen(name); // free once the other process has gone
  await mine.close();
});

test("the first instance asks for FILE_FLAG_FIRST_PIPE_INSTANCE, later ones join our own pipe", async () => {
  const flags: number[] = [];
  const restore = inject("CreateNamedPipeW", (real) => (...args) => {
    flags.push(args[1]);
    return real(...args);
  });
  const name = uniqueName("flag");
  try {
    const server = listen(name);
    const accepted = server.accept();
    const client = await connect(name);
    const peer = (await accepted)!;
    await Promise.all([client.close(), peer.close()]);
    await server.close();
  } finally {
    restore();
  }
  assert.ok(flags.length >= 2, `${flags.length} instances`);
  assert.notEqual(flags[0] & FILE_FLAG_FIRST_PIPE_INSTANCE, 0, "the first instance");
  for (const f of flags.slice(1)) assert.equal(f & FILE_FLAG_FIRST_PIPE_INSTANCE, 0);
});

test(
  "a squatter spinning in another process never gets the name while the server replaces its instances",
  {
    timeout: 120_000,
  },
  async () => {
    const name = uniqueName("race");
    // maxInstances 1, as `winpipe recv` uses: no listener while the one client is connected, so
    // every close is a moment where the server must make a new instance for the name to live on.
    const server = listen(name, { maxInstances: 1 });
    const squat = await squatter("race", name);
    const me = native().kernel32.GetCurrentProcessId();
    // Each new instance takes 30 ms to make: the squatter (an attempt every millisecond or so)
    // would surely get in if the name were free meanwhile, i.e. if the old instance were closed
    // before the next one is made.
    const stall = new Int32Array(new SharedArrayBuffer(4));
    const restore = inject("CreateNamedPipeW", (real) => (...args) => {
      Atomics.wait(stall, 0, 0, 30);
      return real(...args);
    });
    let result: SquatResult | undefined;
    try {
      for (let i = 0; i < 40; i++) {
        const accepted = server.accept();
        const client = await within(10_000, connect(name, { timeout: 5_000 }), `connect ${i}`);
        assert.equal(
          client.peerProcessId,
          me,
          `cycle ${i}: the server end is ours, not the squatter's`,
        );
        const peer = (await within(5_000, accepted, `accept ${i}`))!;
        client.writer!.write(`ping ${i}`);
        const r = peer.readable.getReader();
        assert.equal(new TextDecoder().decode((await within(5_000, r.read())).value), `ping ${i}`);
        r.releaseLock();
        switch (i % 4) {
          case 0: // the server closes first, the client later
            await peer.close();
            await client.close();
            break;
          case 1: // the client closes first
            await client.close();
            await peer.close();
            break;
          case 2: {
            // dropped without close(): the client goes, the server end reads the end, and its
            // writer fails on the broken pipe; both halves released, close() never called
            await client.close();
            const end = await within(5_000, peer.readable.getReader().read());
            assert.equal(end.done, true);
            peer.writer!.write("into a broken pipe");
            await assert.rejects(within(5_000, peer.writer!.flush()));
            break;
          }
          case 3: // the server closes while the client still holds its end
            await peer.close();
            await sleep(20);
            await client.close();
            break;
        }
      }
    } finally {
      restore();
      result = await squat.stop();
      await server.close();
    }
    assert.equal(result.squatted, false, `the squatter took the name: ${JSON.stringify(result)}`);
    assert.ok(result.attempts > 500, `the squatter really tried: ${JSON.stringify(result)}`);
  },
);
