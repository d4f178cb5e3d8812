// The HTTP comparison on named pipes, on Windows (natively, or under Wine through
// scripts/wine.sh), for bench/compare_http.mjs: requests per second for a small GET with
// keep-alive, served by winpipe's serve() in Deno and in Bun, and by Node's http on the same kind
// of pipe. The load is Node's http client for all (bench/peers/http_load.cjs). Results go to
// .tmp/bench/http_windows.json. Environment: WINPIPE_BENCH_ROUNDS (default 5),
// WINPIPE_BENCH_HTTP_CONNS (default 4), WINPIPE_BENCH_HTTP_SECONDS (default 3).
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { bun, deno, jsonLines, node, sleep, startProcess } from "./windows_process.ts";

const env = process.env;
const rounds = Number(env.WINPIPE_BENCH_ROUNDS || 5);
const conns = Number(env.WINPIPE_BENCH_HTTP_CONNS || 4);
const seconds = Number(env.WINPIPE_BENCH_HTTP_SECONDS || 3);
const dir = resolve(".tmp", "bench", "http_windows");
mkdirSync(dir, { recursive: true });
const server = resolve("bench", "peers", "http_server.ts");
const impls = [
  { name: "winpipe (Deno)", kind: "winpipe", cmd: [deno, "run", "-A", server, "winpipe"] },
  { name: "winpipe (Bun)", kind: "winpipe", cmd: [bun, server, "winpipe"] },
  { name: "node http", kind: "node", cmd: [node, resolve("bench", "peers", "http_server.cjs")] },
];
const results: {
  impl: string;
  round: number;
  value?: number;
  reconnects?: number;
  error?: string;
}[] = [];
let n = 0;
console.log(
  `${impls.length} servers on pipes, ${rounds} rounds of ${seconds} s, ${conns} connections`,
);
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < impls.length; k++) {
    const impl = impls[(k + round) % impls.length];
    const pipe = String.raw`\\.\pipe\winpipe-bench-http-` + `${process.pid}-${++n}`;
    const ready = resolve(dir, "ready");
    const out = resolve(dir, "load.jsonl");
    rmSync(ready, { force: true });
    rmSync(out, { force: true });
    const srv = startProcess(
      impl.cmd[0],
      [...impl.cmd.slice(1), pipe, ready],
      resolve(dir, "server.log"),
      120_000,
    );
    let error: string | undefined;
    let r;
    try {
      for (const t0 = Date.now(); !existsSync(ready);) {
        if (srv.child.exitCode !== null) throw new Error("the server exited");
        if (Date.now() - t0 > 60_000) throw new Error("not listening after 60 s");
        await sleep(20);
      }
      const load = startProcess(
        node,
        [resolve("bench", "peers", "http_load.cjs"), pipe, String(conns), String(seconds), out],
        resolve(dir, "load.log"),
        120_000,
      );
      const code = await load.exited;
      r = jsonLines(out)[0];
      error = code !== 0
        ? `the load: exit ${code}${r?.error ? `: ${r.error}` : ""}`
        : r
        ? undefined
        : "no result";
    } catch (e) {
      error = String((e as Error).message ?? e);
    } finally {
      srv.child.kill();
      await srv.exited;
    }
    const value = error ? undefined : r.requestsPerSec;
    results.push({ impl: impl.name, round, value, reconnects: r?.reconnects, error });
    console.log(
      `round ${round + 1} ${impl.name.padEnd(16)} ${error ?? `${value.toFixed(0)} requests/s`}`,
    );
  }
}
const file = resolve(".tmp", "bench", "http_windows.json");
writeFileSync(
  file,
  JSON.stringify(
    { rounds, conns, seconds, impls: impls.map(({ name, kind }) => ({ name, kind })), results },
    null,
    2,
  ),
);
console.log(`wrote ${file}`);
