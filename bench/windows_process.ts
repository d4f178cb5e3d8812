// What the Windows-side bench drivers share: the runtimes' paths, child processes whose stderr
// goes to a file (never a pipe: node.exe under Wine dies with EBADF on one) with a time limit,
// and JSON-lines result files.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";

/** The Windows runtimes: under Wine from scripts/wine.sh's environment, else from PATH. */
export const deno: string = process.env.WINPIPE_DENO || process.execPath;
export const bun: string = process.env.WINPIPE_BUN || "bun";
export const node: string = process.env.WINPIPE_NODE || "node";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts `cmd args`, stderr to `log`; `exited` resolves to the exit code (-1: killed, failed). */
export function startProcess(cmd: string, args: string[], log: string, limitMs = 60_000) {
  const err = openSync(log, "w");
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", err] });
  const exited = new Promise<number>((resolve) => {
    const timer = setTimeout(() => child.kill(), limitMs);
    let closed = false;
    const done = (code: number) => {
      clearTimeout(timer);
      if (!closed) closeSync(err);
      closed = true;
      resolve(code);
    };
    child.on("exit", (code) => done(code ?? -1));
    child.on("error", () => done(-1));
  });
  return { child, exited };
}

/** The records of a JSON-lines file (none if it does not exist yet). */
// deno-lint-ignore no-explicit-any
export function jsonLines(file: string): any[] {
  return existsSync(file)
    ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l))
    : [];
}

/** What bench/compare.mjs says about the C peers (bench/peers/*.c) it tried to compile. */
export type CPeers =
  | { built: true; compiler: string; exe: (name: string) => string }
  | { built: false; reason: string };

/**
 * The C peers compiled by bench/compare.mjs into .tmp/bench/peers (its record is
 * .tmp/bench/c-peers.json); when they are missing, why. The paths are absolute (Bun under Wine
 * mis-resolves relative ones).
 */
export function cPeers(): CPeers {
  const file = resolve(".tmp", "bench", "c-peers.json");
  if (!existsSync(file)) {
    return { built: false, reason: "not compiled (npm run bench compiles them)" };
  }
  const r = JSON.parse(readFileSync(file, "utf8"));
  if (!r.built) return { built: false, reason: String(r.reason) };
  const exe = (name: string) => {
    const path = resolve(".tmp", "bench", "peers", `${name}.exe`);
    if (!existsSync(path)) throw new Error(`${path} is missing; npm run bench compiles it`);
    return path;
  };
  return { built: true, compiler: String(r.compiler), exe };
}
