// What the native (Linux, macOS) bench drivers share, bench/compare_unix.mjs and
// bench/compare_http.mjs: the runtimes from node_modules/.bin, the C compiler, child processes
// whose stderr goes to a log file with a time limit, and the machine's description.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root. */
export const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Deno's and Bun's executables from node_modules/.bin; throws when npm install has not run. */
export function runtimes() {
  const bin = (name) => join(repo, "node_modules", ".bin", name);
  const found = { deno: bin("deno"), bun: bin("bun") };
  for (const [name, path] of Object.entries(found)) {
    if (!existsSync(path)) throw new Error(`no ${name} in node_modules/.bin: run npm install`);
  }
  return found;
}

/** The C compiler: $CC, else gcc when there is one, else cc. */
export const cCompiler = () =>
  process.env.CC || (spawnSync("gcc", ["--version"]).status === 0 ? "gcc" : "cc");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `argv` in the repository, stderr to `dir/log`. `exited` resolves with the exit code (-1:
 * killed or failed to start); past `limitMs` it is killed. `stop()` ends it and resolves the same.
 */
export function startLogged(dir, argv, log, limitMs = 120_000) {
  const err = openSync(join(dir, log), "w");
  const child = spawn(argv[0], argv.slice(1), { cwd: repo, stdio: ["ignore", "ignore", err] });
  const exited = new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    const done = (code) => {
      clearTimeout(timer);
      closeSync(err);
      resolve(code);
    };
    child.on("exit", (code) => done(code ?? -1));
    child.on("error", () => done(-1));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    return await exited;
  };
  return { child, exited, stop, log: join(dir, log) };
}

/** The first line of a log file, cut to 100 characters ("" for an empty file). */
export const firstLine = (file) =>
  readFileSync(file, "utf8").trim().split("\n")[0]?.slice(0, 100) ?? "";

/** The machine, as the results record it. */
export const machine = () => ({
  cpus: cpus().length,
  model: cpus()[0]?.model ?? "?",
  os: `${process.platform} ${release()}`,
});
