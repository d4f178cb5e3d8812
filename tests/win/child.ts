// Child processes for the Windows suites, with their output in files: under Wine a Windows
// program's output must not go to a Linux pipe, and deno.exe must not pipe a child's stdio
// (docs/upstream/deno-named-pipe-panic.md).
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** How a child ended, and what it wrote. */
export interface Exited {
  code: number | null;
  timedOut: boolean;
  ms: number;
  stdout: string;
  stderr: string;
}

/** A running child: `exited` settles when it ends (killed after the limit given to `start`). */
export interface Started {
  pid: number | undefined;
  /** The file that receives the child's stdout. */
  stdoutPath: string;
  exited: Promise<Exited>;
  kill(): void;
}

/** Where a child runs, and with what environment (the parent's by default). */
export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /**
   * No console (DETACHED_PROCESS) for a child the test kills: under Wine, a killed child's
   * conhost.exe is now and then left running, and holds the Wine root (chaos_server.ts).
   */
  detached?: boolean;
}

/** Starts a program with its output in files under `dir`, and kills it after `limitMs`. */
export function start(
  exe: string,
  args: string[],
  dir: string,
  limitMs: number,
  options: SpawnOptions = {},
): Started {
  const tag = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const outPath = join(dir, `${tag}.stdout`);
  const errPath = join(dir, `${tag}.stderr`);
  const out = openSync(outPath, "w");
  const err = openSync(errPath, "w");
  const t0 = performance.now();
  let timedOut = false;
  const child = spawn(exe, args, { ...options, stdio: ["ignore", out, err] });
  const exited = new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill();
    }, limitMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  }).then((code) => ({
    code,
    timedOut,
    ms: performance.now() - t0,
    stdout: readFileSync(outPath, "utf8"),
    stderr: readFileSync(errPath, "utf8"),
  })).finally(() => {
    closeSync(out);
    closeSync(err);
  });
  return { pid: child.pid, stdoutPath: outPath, exited, kill: () => child.kill() };
}

/** Waits until the child's stdout contains `text` (polled); rejects if the child ends first. */
export async function waitForOutput(child: Started, text: string, limitMs: number): Promise<void> {
  let ended = false;
  void child.exited.finally(() => (ended = true)).catch(() => {});
  const deadline = performance.now() + limitMs;
  while (!readFileSync(child.stdoutPath, "utf8").includes(text)) {
    if (ended) {
      const e = await child.exited;
      throw new Error(
        `the child ended (exit ${e.code}) before printing ${
          JSON.stringify(text)
        }:\n${e.stdout}${e.stderr}`,
      );
    }
    if (performance.now() > deadline) {
      throw new Error(`no ${JSON.stringify(text)} after ${limitMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a program to its end (see {@link start}). */
export function run(
  exe: string,
  args: string[],
  dir: string,
  limitMs: number,
  options: SpawnOptions = {},
): Promise<Exited> {
  return start(exe, args, dir, limitMs, options).exited;
}

/** A TypeScript file as the running runtime runs it (Deno with the permissions named). */
export function scriptCommand(file: string, denoPermissions: string[]): [string, string[]] {
  return process.versions.bun
    ? [process.execPath, [file]]
    : [process.execPath, ["run", ...denoPermissions, file]];
}

/** Runs `body` with a fresh temporary directory (named after `tag`), removed afterwards. */
export async function withDir(tag: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `winpipe-${tag}-`));
  try {
    await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
