#!/usr/bin/env node
// The HTTP comparison on Unix sockets, natively (Linux, macOS), for bench/compare.mjs: requests
// per second for a small GET with keep-alive, served by winpipe's serve() in Deno and in Bun, by
// the runtimes' own servers on a Unix socket (Deno.serve({ path }), Bun.serve({ unix })), and by
// Node's http. The load is one C client for all (bench/peers/http_load.c, compiled here into
// .tmp/bench/http/): CONNS threads, each one request at a time on a kept-alive connection; a
// server that closes after a response costs the client a reconnect, counted in the time.
//
// The servers run one at a time, their order rotated every round. Results go to
// .tmp/bench/http.json (bench/render_http.mjs renders them); the processes' stderr to
// .tmp/bench/http/*.log. Environment: WINPIPE_BENCH_ROUNDS (default 5), WINPIPE_BENCH_HTTP_CONNS
// (default 4), WINPIPE_BENCH_HTTP_SECONDS (default 3), CC (default gcc, else cc).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cCompiler,
  firstLine,
  machine,
  repo,
  runtimes,
  sleep,
  startLogged,
} from "./posix_process.mjs";

const env = process.env;
const rounds = Number(env.WINPIPE_BENCH_ROUNDS || 5);
const conns = Number(env.WINPIPE_BENCH_HTTP_CONNS || 4);
const seconds = Number(env.WINPIPE_BENCH_HTTP_SECONDS || 3);
const dir = join(repo, ".tmp", "bench", "http");
mkdirSync(dir, { recursive: true });
const { deno, bun } = runtimes();

const cc = cCompiler();
const compiler = (spawnSync(cc, ["--version"], { encoding: "utf8" }).stdout ?? "?").split("\n")[0];
const load = join(dir, "http_load");
{
  const src = join(repo, "bench", "peers", "http_load.c");
  const r = spawnSync(cc, ["-O2", "-Wall", "-Wextra", "-pthread", "-o", load, src], {
    encoding: "utf8",
  });
  const said = ((r.stdout ?? "") + (r.stderr ?? "")).trim();
  if (said) console.error(said);
  if (r.status !== 0) throw new Error(`${cc} failed on bench/peers/http_load.c`);
}

const server = (file) => join("bench", "peers", file);
const impls = [
  {
    name: "winpipe (Deno)",
    runtime: "Deno",
    kind: "winpipe",
    cmd: [deno, "run", "-A", server("http_server.ts"), "winpipe"],
  },
  {
    name: "Deno.serve",
    runtime: "Deno",
    kind: "own",
    cmd: [deno, "run", "-A", server("http_server.ts"), "native"],
  },
  {
    name: "winpipe (Bun)",
    runtime: "Bun",
    kind: "winpipe",
    cmd: [bun, server("http_server.ts"), "winpipe"],
  },
  {
    name: "Bun.serve",
    runtime: "Bun",
    kind: "own",
    cmd: [bun, server("http_server.ts"), "native"],
  },
  {
    name: "node http",
    runtime: "Node",
    kind: "node",
    cmd: [process.execPath, server("http_server.cjs")],
  },
];

/** Starts `cmd`, stderr to a log file in .tmp/bench/http. */
const start = (cmd, log, limitMs) => startLogged(dir, cmd, log, limitMs);

/** The sockets live in a private directory of their own (mode 0700), removed at the end. */
const sockets = mkdtempSync(join(tmpdir(), "winpipe-bench-http-"));
let n = 0;
const results = [];

console.log(`${impls.length} servers, ${rounds} rounds of ${seconds} s, ${conns} connections`);
try {
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(k + round) % impls.length];
      const path = join(sockets, `http-${++n}.sock`);
      const ready = join(dir, "ready");
      const out = join(dir, "load.jsonl");
      rmSync(ready, { force: true });
      rmSync(out, { force: true });
      const srv = start([...impl.cmd, path, ready], "server.log");
      let error;
      let r;
      try {
        for (const t0 = Date.now(); !existsSync(ready);) {
          if (srv.child.exitCode !== null) throw new Error(`exited: ${firstLine(srv.log)}`);
          if (Date.now() - t0 > 30_000) throw new Error("not listening after 30 s");
          await sleep(10);
        }
        const client = start([load, path, String(conns), String(seconds), out], "load.log");
        const code = await client.exited;
        r = existsSync(out)
          ? JSON.parse(readFileSync(out, "utf8").trim().split("\n")[0])
          : undefined;
        error = code !== 0
          ? `the load: exit ${code}: ${firstLine(client.log)}`
          : r
          ? undefined
          : "no result";
      } catch (e) {
        error = String(e.message ?? e);
      } finally {
        await srv.stop();
      }
      const value = error ? undefined : r.requestsPerSec;
      results.push({ impl: impl.name, round, value, reconnects: r?.reconnects, error });
      console.log(
        `round ${round + 1} ${impl.name.padEnd(16)} ${
          error ?? `${value.toFixed(0)} requests/s, ${r.reconnects} reconnects`
        }`,
      );
    }
  }
} finally {
  rmSync(sockets, { recursive: true, force: true });
}

// On Linux, the same comparison on named pipes under Wine (bench/http_windows.ts, one Wine
// process tree: the servers and Node's client), unless WINPIPE_BENCH_HTTP_WINE=0.
let wine;
if (process.platform === "linux" && env.WINPIPE_BENCH_HTTP_WINE !== "0") {
  console.log("=== the same on named pipes, under Wine (bench/http_windows.ts)");
  const r = spawnSync("bash", [
    join(repo, "scripts", "wine.sh"),
    "deno",
    "run",
    "-A",
    "bench/http_windows.ts",
  ], {
    cwd: repo,
    stdio: "inherit",
    env: { ...env, WINPIPE_BENCH_ROUNDS: String(rounds), WINPIPE_BENCH_HTTP_CONNS: String(conns) },
  });
  const file = join(repo, ".tmp", "bench", "http_windows.json");
  wine = r.status === 0 && existsSync(file)
    ? JSON.parse(readFileSync(file, "utf8"))
    : { error: `bench/http_windows.ts failed (${r.error?.message ?? `exit ${r.status}`})` };
}

const version = (cmd, ...args) =>
  (spawnSync(cmd, args, { encoding: "utf8" }).stdout ?? "?").trim().split("\n")[0];
const file = join(repo, ".tmp", "bench", "http.json");
writeFileSync(
  file,
  JSON.stringify(
    {
      date: new Date().toISOString().slice(0, 10),
      platform: process.platform,
      machine: machine(),
      versions: {
        deno: version(deno, "--version"),
        bun: version(bun, "--version"),
        node: process.version,
        cc: compiler,
      },
      rounds,
      conns,
      seconds,
      impls: impls.map(({ name, runtime, kind }) => ({ name, runtime, kind })),
      results,
      wine,
    },
    null,
    2,
  ),
);
console.log(`wrote ${file}`);
