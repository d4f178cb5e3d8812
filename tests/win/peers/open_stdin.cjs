// Runs a command whose standard input stays open and silent for ever (a pipe that Node never
// writes to nor ends), with its stdout and stderr in files. When it exits, or is killed after
// LIMIT_MS, writes {code, timedOut, ms} to RESULT and exits. Node spawns it, not Deno: deno.exe
// under Wine cannot give a child piped stdio.
//
//   node open_stdin.cjs RESULT LIMIT_MS EXE ARGS...     (output in RESULT.stdout, RESULT.stderr)
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const [result, limitMs, exe, ...args] = process.argv.slice(2);
const out = fs.openSync(`${result}.stdout`, "w");
const err = fs.openSync(`${result}.stderr`, "w");
const t0 = performance.now();
let timedOut = false;
const child = spawn(exe, args, { stdio: ["pipe", out, err] });
const timer = setTimeout(() => {
  timedOut = true;
  child.kill();
}, Number(limitMs));
const finish = (record) => {
  clearTimeout(timer);
  fs.writeFileSync(result, JSON.stringify({ ...record, timedOut, ms: performance.now() - t0 }));
  process.exit(0);
};
child.on("exit", (code) => finish({ code }));
child.on("error", (e) => finish({ error: String(e) }));
