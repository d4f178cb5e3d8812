/**
 * The chaos run's process (started by tests/win/chaos.test.ts): `listen()` servers that check
 * every byte they are sent (one with default buffers, one with small ones), and, for a bounded
 * time, clients that connect, write, cancel, close and die mid-stream (the modes are in
 * chaos_protocol.ts). In-process clients (chaos_clients.ts) run in LANES at once; clients that
 * die are separate processes (chaos_writer.ts) killed by their pid, CHILD_LANES at once. The
 * failures and statistics gather in chaos_report.ts.
 *
 * It first runs a warm-up session (one client of each kind, then everything closed) and takes
 * the handle count as the baseline; then the timed session; then, with everything closed, the
 * count again. It writes a JSON result (statistics and failures) and must then exit by itself:
 * it never calls process.exit, so a handle, pipe or timer left behind keeps it alive, and the
 * test reports that.
 *
 *   <runtime> tests/win/peers/chaos_server.ts RESULT_FILE SEED SECONDS
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { listen, type ListenOptions, type PipeConnection, type PipeServer } from "../../../mod.ts";
import {
  countByType,
  describeHandle,
  type HandleEntry,
  handleTable,
  nameTypes,
  newHandles,
  processHandleCount,
  typeDifferences,
} from "../handles.ts";
import { sleep, uniqueName, within } from "../server_end.ts";
import { IN_PROCESS, runClient, specFor } from "./chaos_clients.ts";
import {
  ByteStream,
  decodeHeader,
  DIE_ECHO,
  type Header,
  HEADER_SIZE,
  mix,
  MODES,
  Rng,
} from "./chaos_protocol.ts";
import {
  acceptedOn,
  active,
  atMost,
  CONNECTION_MS,
  counters,
  describe,
  expected,
  fail,
  failures,
  headerSeen,
  KiB,
  mismatch,
  peerGone,
  serverDone,
  type ServerOutcome,
  stats,
  STEP_MS,
} from "./chaos_report.ts";

/** In-process clients at once. */
const LANES = 6;
/** Dying client processes at once (each is a whole runtime starting under Wine). */
const CHILD_LANES = 2;
/**
 * Fewer instances than clients at once: now and then every instance is connected, clients wait
 * out ERROR_PIPE_BUSY, and the server listens again when a connection is closed.
 */
const MAX_INSTANCES = 6;
/**
 * A second server with small pipe buffers (and fewer instances), where writes wait for the
 * reader far more often: more stop() and cancel() calls meet an operation in flight.
 */
const SMALL_BUFFERS = { maxInstances: 3, inBufferSize: 4 * KiB, outBufferSize: 4 * KiB };
/** After the deadline, the run must have closed everything within this; else it reports. */
const END_MS = 45_000;
/** Bounds on the number of clients, whatever the clock says. */
const MAX_CLIENTS = 100_000;
const MAX_CHILDREN = 1_000;
/** Client ids: in-process 1.., children from CHILD_IDS, warm-up from WARMUP_IDS. */
const CHILD_IDS = 200_000;
const WARMUP_IDS = 900_000;

const [resultFile, seedArg, secondsArg] = process.argv.slice(2);
const SEED = Number(seedArg) >>> 0;
const SECONDS = Number(secondsArg);
const started = Date.now();
const runtime = "Deno" in globalThis
  ? `deno ${process.versions.deno}`
  : `bun ${process.versions.bun}`;
/** How to start a script in this runtime: `deno run -A script` or `bun script`. */
const runArgs = "Deno" in globalThis ? ["run", "-A"] : [];
const writerScript = fileURLToPath(new URL("./chaos_writer.ts", import.meta.url).href);
const tmp = mkdtempSync(join(tmpdir(), "winpipe-chaos-"));

process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${describe(e)}`));
process.on("uncaughtException", (e) => fail(`uncaught exception: ${describe(e)}`));

// ---- the server ----

type Read = () => Promise<Uint8Array | null>;

/** A server on a fresh name, and a way to stop it once every client is done. */
function startServer(options: ListenOptions) {
  const name = uniqueName("chaos");
  const server: PipeServer = listen(name, options);
  const serving = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of server) {
        acceptedOn.set(name, (acceptedOn.get(name) ?? 0) + 1);
        const p = serve(conn).finally(() => serving.delete(p));
        serving.add(p);
      }
    } catch (e) {
      fail(`server: accept failed: ${describe(e)}`);
    }
  })();
  return {
    name,
    async stop() {
      try {
        await within(CONNECTION_MS, Promise.all(serving), "the server sides of the connections");
      } catch (e) {
        fail(`server: ${describe(e)}; ${serving.size} connection(s) still open`);
      }
      await within(STEP_MS, server.close(), "server.close()").catch((e) => fail(describe(e)));
      await within(STEP_MS, accepting, "the accept loop").catch((e) => fail(describe(e)));
    },
  };
}

async function serve(conn: PipeConnection): Promise<void> {
  const key = `server connection ${++stats.server.connections}`;
  const state = { who: `server side of connection ${stats.server.connections}`, received: 0 };
  active.set(key, () => `${state.who}, ${state.received} bytes verified`);
  try {
    await within(CONNECTION_MS, serveConnection(conn, state), state.who);
  } catch (e) {
    fail(`${state.who}: ${describe(e)} (${state.received} bytes verified so far)`);
    await conn.close().catch(() => {});
  } finally {
    active.delete(key);
  }
}

async function serveConnection(
  conn: PipeConnection,
  state: { who: string; received: number },
): Promise<void> {
  // The header, through a default reader.
  const first = conn.readable.getReader();
  let head: Uint8Array = new Uint8Array(0);
  while (head.byteLength < HEADER_SIZE) {
    const r = await first.read();
    if (r.done) break;
    head = concat(head, r.value);
  }
  if (head.byteLength === 0) {
    stats.server.empty++; // a client that came and went
    await conn.close();
    return;
  }
  if (head.byteLength < HEADER_SIZE) {
    fail(`${state.who}: EOF after ${head.byteLength} bytes, inside the ${HEADER_SIZE}-byte header`);
    await conn.close();
    return;
  }
  const header = decodeHeader(head);
  const who = `server side of client #${header.clientId} (${header.mode})`;
  state.who = who;
  stats.server.byMode[header.mode]++;
  headerSeen.arrive(header.clientId, header);
  const outcome: ServerOutcome = {
    header,
    received: 0,
    eof: false,
    dropped: false,
    corrupt: false,
  };
  const stream = new ByteStream(header.seed);
  const echo = header.mode === "echo" || header.mode === "echoCancel"
    || (header.mode === "die" && (header.variant & DIE_ECHO) !== 0);
  /** The client goes while the echo flows: a peer-gone failure of the echo is expected. */
  const goesWhileEchoed = header.mode === "echoCancel" || header.mode === "die";
  const writer = conn.writer!;
  let corrupt = false;
  let echoing = echo;

  // The rest through the default reader, or (variant bit 0) a BYOB reader of random sizes.
  let read: Read;
  if (header.variant & 1) {
    first.releaseLock();
    const byob = conn.readable.getReader({ mode: "byob" });
    const sizes = new Rng(mix(header.seed, 0xb10b));
    read = async () => {
      const r = await byob.read(new Uint8Array(sizes.size(128 * KiB)));
      return r.done ? null : r.value!;
    };
  } else {
    read = async () => {
      const r = await first.read();
      return r.done ? null : r.value;
    };
  }

  const take = async (bytes: Uint8Array) => {
    if (bytes.byteLength === 0) return;
    if (!corrupt) {
      const bad = stream.check(bytes);
      if (bad) {
        corrupt = outcome.corrupt = true;
        fail(mismatch(who, bad));
      } else {
        outcome.received += bytes.byteLength;
        state.received = outcome.received;
        stats.server.bytesVerified += bytes.byteLength;
      }
    }
    if (echoing) {
      try {
        if (!writer.write(bytes)) await within(CONNECTION_MS, writer.flush(), `${who}: echo flush`);
        stats.server.bytesEchoed += bytes.byteLength;
      } catch (e) {
        echoing = false;
        // The client of echoCancel stops reading and goes, a dying one is killed: the echo's
        // peer-gone failure is expected.
        if (goesWhileEchoed && peerGone(e)) expected(`server echo write (${header.mode})`, e);
        else fail(`${who}: echo write failed: ${describe(e)}`);
      }
    }
  };

  await take(head.subarray(HEADER_SIZE));
  for (;;) {
    if (header.mode === "serverDrop" && outcome.received >= header.cut) {
      await drop(conn, header, read, take, who);
      outcome.dropped = true;
      break;
    }
    const bytes = await read();
    if (bytes === null) {
      outcome.eof = true;
      break;
    }
    await take(bytes);
  }
  if (outcome.eof && header.total !== null && outcome.received !== header.total && !corrupt) {
    fail(`${who}: ${outcome.received} bytes arrived before EOF, ${header.total} were declared`);
  }
  try {
    await within(STEP_MS, conn.close(), `${who}: close()`);
  } catch (e) {
    // The client goes while echo bytes may still be queued or in flight: close() flushes them,
    // and rejects with the writer's peer-gone failure, as documented.
    if (goesWhileEchoed && peerGone(e)) expected(`server close() after echo (${header.mode})`, e);
    else fail(`${who}: close() failed: ${describe(e)}`);
  }
  serverDone.arrive(header.clientId, outcome);
}

/** serverDrop: the server closes its end while the client still writes. */
async function drop(
  conn: PipeConnection,
  header: Header,
  read: Read,
  take: (b: Uint8Array) => Promise<void>,
  who: string,
): Promise<void> {
  stats.server.drops++;
  if (header.variant & 2) {
    // With a read in flight: cancel() hands back what that read had transferred, in order.
    stats.server.dropsWithReadInFlight++;
    const pending = read();
    pending.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    await sleep(header.variant & 4 ? 1 : 0);
    const rest = await within(STEP_MS, conn.reader!.cancel(), `${who}: reader.cancel()`);
    const last = await within(STEP_MS, pending, `${who}: the read pending at cancel()`);
    if (last) await take(last);
    stats.server.cancelLeftoverBytes += rest.byteLength;
    await take(rest);
  }
  await within(STEP_MS, conn.close(), `${who}: close() to drop the client`);
}

// ---- clients that die: separate processes, killed by their pid ----

async function runChild(id: number): Promise<void> {
  const who = `dying client #${id}`;
  let doing = "starting";
  active.set(who, () => `${who}: ${doing}`);
  try {
    await childSteps(id, who, (what) => (doing = what));
  } finally {
    active.delete(who);
  }
}

async function childSteps(id: number, who: string, now: (what: string) => void): Promise<void> {
  const rng = new Rng(mix(SEED, id));
  const seed = rng.next();
  const early = rng.chance(0.2); // killed at a random time from its start, maybe before connecting
  const delay = early ? rng.int(0, 3000) : rng.int(0, 1500);
  const echo = rng.chance(0.5);
  const log = join(tmp, `child-${id}.log`);
  stats.children.spawned++;
  stats.clients.die++;
  if (echo) stats.children.withEcho++;
  const child = spawn(
    process.execPath,
    [...runArgs, writerScript, names[0], String(id), String(seed), echo ? "1" : "0", log],
    // detached (DETACHED_PROCESS): no console, so Wine starts no conhost.exe for it. When a
    // child with a console is killed, its conhost is now and then left running (measured with
    // deno.exe: after 3 of 8 runs of 30 kills; detached, after none of 7), and it keeps the
    // wineserver alive, and with it scripts/wine.sh's lock on the Wine root, for good.
    { stdio: "ignore", detached: true },
  );
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => (exit = `code ${code}, signal ${signal}`, resolve()));
    child.on("error", (e) => (exit = `spawn error: ${describe(e)}`, resolve()));
  });
  if (!early) {
    now("waiting for its header to arrive");
    await atMost(CONNECTION_MS / 2, Promise.race([headerSeen.wait(id), exited]));
  }
  now(`${delay} ms before the kill`);
  await sleep(delay);
  if (exit !== undefined) {
    let text = "";
    try {
      text = readFileSync(log, "utf8");
    } catch { /* no log */ }
    fail(`${who}: exited by itself (${exit}) before it was killed: ${text || "no log"}`);
  } else {
    const mid = headerSeen.arrived(id);
    now(`killed (pid ${child.pid}), waiting for its exit and the server's EOF`);
    process.kill(child.pid!);
    stats.children.killed++;
    await within(STEP_MS, exited, `${who}: exit after kill`).catch((e) => fail(describe(e)));
    // Its bytes may still be in the pipe: give the server a moment to reach its header.
    const s = await atMost(2_000, serverDone.wait(id));
    if (s) {
      stats.children.killedMidStream++;
      stats.children.bytesBeforeDeath += s.received;
      if (!s.eof) fail(`${who}: the server side did not see EOF after the kill`);
    } else if (mid) {
      // The header arrived, so EOF must follow; the server's own time limit reports a hang.
      stats.children.killedMidStream++;
    } else {
      stats.children.killedBeforeHeader++;
    }
  }
  serverDone.forget(id);
  headerSeen.forget(id);
}

// ---- sessions ----

/** The session's pipe names: the default server, and the one with small buffers. */
let names: string[] = [];

/** One session: both servers; stop() stops them once every client is done. */
function startServers() {
  const servers = [startServer({ maxInstances: MAX_INSTANCES }), startServer(SMALL_BUFFERS)];
  names = servers.map((s) => s.name);
  return { stop: () => Promise.all(servers.map((s) => s.stop())) };
}

async function guarded(what: string, p: () => Promise<void>): Promise<void> {
  try {
    await within(2 * CONNECTION_MS, p(), what);
  } catch (e) {
    fail(`${what}: ${describe(e)}`);
  }
}

/**
 * One of each kind on each server, one after another, and a dying client: the thread pool and
 * the runtime make what they keep.
 */
async function warmUp(): Promise<void> {
  const servers = startServers();
  let id = WARMUP_IDS;
  for (const server of [0, 1]) {
    for (const mode of IN_PROCESS.map(([m]) => m)) {
      const spec = { ...specFor(SEED, ++id, mode), server };
      stats.warmupClients++;
      await guarded(`warm-up client #${spec.id} (${mode})`, () => runClient(spec, names[server]));
    }
  }
  stats.warmupClients++;
  await guarded("warm-up dying client", () => runChild(++id));
  await servers.stop();
  Object.assign(stats, counters());
}

async function chaos(deadline: number): Promise<void> {
  const servers = startServers();
  let nextClient = 0;
  let nextChild = CHILD_IDS;
  const lane = async () => {
    while (Date.now() < deadline && nextClient < MAX_CLIENTS) {
      const spec = specFor(SEED, ++nextClient);
      stats.clients[spec.mode]++;
      stats.smallBufferClients += spec.server;
      await guarded(`client #${spec.id} (${spec.mode})`, () => runClient(spec, names[spec.server]));
    }
  };
  const childLane = async () => {
    while (Date.now() < deadline && nextChild < CHILD_IDS + MAX_CHILDREN) {
      const id = ++nextChild;
      await guarded(`dying client #${id}`, () => runChild(id));
    }
  };
  await Promise.all([
    ...Array.from({ length: LANES }, lane),
    ...Array.from({ length: CHILD_LANES }, childLane),
  ]);
  await servers.stop();
}

let baselineTable: HandleEntry[] = [];

/**
 * The handles, compared with the baseline type by type: readings 300 ms after the run, then
 * every 500 ms for a few seconds while any type differs (a close may still be on its way). Both
 * the baseline and the first reading come right after pool activity, so Wine's thread pool has
 * its workers in both: it drops them after 5 s idle, and with them one handle of its own (type
 * index 0, which NtQueryObject does not name), measured.
 */
async function compareHandles(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await sleep(i === 0 ? 300 : 500);
    const total = processHandleCount();
    const table = handleTable();
    stats.handles.end.push(total);
    if (!table) {
      // No per-type table: the total is all there is to compare.
      stats.handles.difference = total === stats.handles.baseline
        ? []
        : [`total ${total - stats.handles.baseline}`];
    } else {
      stats.handles.endByType = countByType(table);
      stats.handles.difference = typeDifferences(
        stats.handles.baselineByType,
        stats.handles.endByType,
      );
      if (stats.handles.difference.length && !stats.handles.newSinceBaseline.length) {
        stats.handles.newSinceBaseline = newHandles(baselineTable, table).map((e) =>
          describeHandle(e, table)
        );
      }
    }
    if (stats.handles.difference.length === 0) return;
  }
  fail(
    `handles after the run differ from the baseline: ${stats.handles.difference.join(", ")} `
      + `(totals: ${stats.handles.baseline} at the baseline, then ${
        stats.handles.end.join(", ")
      }; new since the baseline: ${stats.handles.newSinceBaseline.join(", ") || "none"})`,
  );
}

/** The behaviours the run exists for, each of which must have happened at least once. */
function neverRan(): string[] {
  const counts: [string, number][] = [
    ...MODES.map((m): [string, number] => [m, stats.clients[m]]),
    ["a client on small buffers", stats.smallBufferClients],
    ["a serverDrop with a read in flight", stats.server.dropsWithReadInFlight],
    ["a client's read ended by a serverDrop", stats.clientSide.readsEndedByDrop],
    ["a dying client killed mid-stream", stats.children.killedMidStream],
    ["a dying client reading an echo", stats.children.withEcho],
  ];
  return counts.filter(([, n]) => n === 0).map(([what]) => what);
}

function writeResult(): void {
  const behaviours = neverRan();
  const result = {
    ok: failures.length === 0 && behaviours.length === 0,
    seed: SEED,
    seconds: SECONDS,
    runtime,
    elapsedMs: Date.now() - started,
    neverRan: behaviours,
    ...stats,
    failures: failures.map((f) => `${f} [seed ${SEED}, ${runtime}]`),
  };
  writeFileSync(resultFile, JSON.stringify(result, null, 2));
}

const deadline = started + SECONDS * 1000;
// A run that hangs still reports: what was under way, and the statistics so far.
const watchdog = setTimeout(() => {
  const doing = [...active.values()].map((f) => f());
  fail(
    `the run did not finish within ${END_MS / 1000} s after its deadline; still under way: ${
      doing.join("; ") || "nothing (then the end-of-run closing hung)"
    }`,
  );
  writeResult();
}, deadline + END_MS - Date.now());

try {
  await warmUp();
  await sleep(200);
  nameTypes(handleTable() ?? []); // NtQueryObject bound and asked before the baseline
  stats.handles.baseline = processHandleCount();
  baselineTable = handleTable() ?? [];
  stats.handles.baselineByType = countByType(baselineTable);
  await chaos(deadline);
  await compareHandles();
} catch (e) {
  fail(`the run itself failed: ${(e as Error)?.stack ?? e}`);
} finally {
  clearTimeout(watchdog);
  rmSync(tmp, { recursive: true, force: true });
  writeResult();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
