// Runs parent.mjs RUNS times (each run: ITERATIONS spawn/connect/write/close rounds) with its
// stdout and stderr in files, and counts the runs whose stderr shows mio's named-pipe panic.
// The stdio of parent.mjs is files, not pipes, so this process itself never reads a pipe.
//
//   deno run -A runner.mjs [--runs N] [--iterations K] [--ffi] [--ffi-writer] [--ffi-child]
//                          [--winpipe] [--deno PATH_TO_DENO_EXE] [--out DIR]
//
// --winpipe is passed on to parent.mjs: winpipe's PipeWriter as the writer (not part of the
// minimal reproduction; see parent.mjs).
//
// Prints one line per run and a summary line:
//   runs 8, panicked 3 (child 2, parent 1), other failures 0, mio versions: mio-1.0.3
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const runs = Number(opt("--runs", 8));
const iterations = Number(opt("--iterations", 25));
const flags = ["--ffi", "--ffi-writer", "--ffi-child", "--winpipe"].filter((f) => argv.includes(f));
const deno = opt("--deno", process.execPath);
const outDir = opt("--out", `mio-repro-${Date.now()}`);
const parent = new URL("./parent.mjs", import.meta.url).pathname.replace(/^\/([A-Za-z]:)/, "$1");
mkdirSync(outDir, { recursive: true });

// "thread 'main' panicked at C:\...\mio-1.0.3\src\sys\windows\named_pipe.rs:871:14:"
const SIGNATURE =
  /panicked at [^\n]*?(mio-[0-9.]+)[\\/]src[\\/]sys[\\/]windows[\\/]named_pipe\.rs:(\d+):(\d+)/;

let panicked = 0, inChild = 0, inParent = 0, other = 0;
const versions = new Set();
for (let r = 1; r <= runs; r++) {
  const outPath = join(outDir, `run-${r}.stdout`);
  const errPath = join(outDir, `run-${r}.stderr`);
  const out = openSync(outPath, "w");
  const err = openSync(errPath, "w");
  const t0 = Date.now();
  // bun.exe (running this file, or named by --deno) takes no `run -A`.
  const bun = /bun(\.exe)?$/i.test(deno);
  const args = [...(bun ? [] : ["run", "-A"]), parent, String(iterations), ...flags];
  const code = await new Promise((resolve) => {
    const p = spawn(deno, args, { stdio: ["ignore", out, err] });
    p.on("error", (e) => resolve(`spawn error: ${e.message}`));
    p.on("exit", (c, s) => resolve(c ?? s));
  });
  closeSync(out);
  closeSync(err);
  const stdout = readFileSync(outPath, "utf8");
  const stderr = readFileSync(errPath, "utf8");
  const m = stderr.match(SIGNATURE);
  const done = (stdout.match(/^iteration \d+:/gm) ?? []).length;
  let verdict;
  if (m) {
    panicked++;
    versions.add(m[1]);
    // The parent prefixes what it copies from a child's stderr with this line.
    const where = stderr.slice(0, m.index).includes("--- child stderr") ? "child" : "parent";
    where === "child" ? inChild++ : inParent++;
    verdict = `PANIC in ${where} (${m[1]} named_pipe.rs:${m[2]}:${m[3]})`;
  } else if (code !== 0) {
    other++;
    verdict = `FAILED without the panic (exit ${code})`;
  } else verdict = "ok";
  console.log(
    `run ${r}: exit ${code}, ${done} iterations, ${
      ((Date.now() - t0) / 1000).toFixed(1)
    } s: ${verdict}`,
  );
}
console.log(
  `runs ${runs}, panicked ${panicked} (child ${inChild}, parent ${inParent}), other failures ${other}, mio versions: ${
    [...versions].join(" ") || "none"
  }`,
);
