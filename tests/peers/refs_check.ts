// The ref()/unref() cases, run natively (tests/unix.test.ts) and under Wine or on Windows
// (tests/win/server_lifetime.test.ts): a child (./refs.ts) that unref()s must end by itself with
// its accept or read still pending; one that does not, or ref()s again, must still be running.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { listen, type PipeConnection } from "../../mod.ts";
import { scriptCommand, start, waitForOutput } from "../win/child.ts";

const script = fileURLToPath(new URL("./refs.ts", import.meta.url));

/** How long a held child is watched before it is ended (the runtimes start in ~1 s, Wine 2–4). */
const HELD_MS = 3_000;

async function expectEnds(mode: string, name: string, dir: string, limitMs = 30_000) {
  const [exe, args] = scriptCommand(script, ["-A"]);
  const r = await start(exe, [...args, mode, name], dir, limitMs).exited;
  assert.equal(r.timedOut, false, `${mode}: the child was still running after ${limitMs} ms`);
  assert.equal(r.code, 0, `${mode}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout.trim(), "ready");
}

async function expectHeld(mode: string, name: string, dir: string): Promise<void> {
  const [exe, args] = scriptCommand(script, ["-A"]);
  const child = start(exe, [...args, mode, name], dir, 60_000);
  try {
    await waitForOutput(child, "ready", 30_000);
    const ended = await Promise.race([
      child.exited.then((r) => `ended (exit ${r.code}): ${r.stderr}`),
      new Promise<false>((r) => setTimeout(() => r(false), HELD_MS)),
    ]);
    assert.equal(ended, false, `${mode}: the process should still be held`);
  } finally {
    child.kill();
    await child.exited;
  }
}

/** Every case, on names made by `fresh()`; `dir` receives the children's output. */
export async function checkRefs(fresh: () => string, dir: string): Promise<void> {
  // Well within closeTimeout (30 s), which a stray timer would hold the process for.
  await expectEnds("close-twice", fresh(), dir, 15_000);
  await expectEnds("ended-unclosed", fresh(), dir, 15_000);
  await expectEnds("server-unref", fresh(), dir);
  await expectHeld("server-held", fresh(), dir);
  await expectHeld("server-unref-ref", fresh(), dir);
  // Connections: this process serves, and never writes, so the child's read stays pending.
  const name = fresh();
  await using server = listen(name);
  const accepted: PipeConnection[] = [];
  const accepting = (async () => {
    for await (const c of server) accepted.push(c);
  })();
  try {
    await expectEnds("conn-unref", name, dir);
    await expectHeld("conn-held", name, dir);
    await expectHeld("conn-unref-ref", name, dir);
  } finally {
    await server.close();
    await accepting;
    await Promise.all(accepted.map((c) => c.close().catch(() => {})));
  }
}
