/**
 * The runtime choice: which FFI adapter to use, and whether there is a Windows to use it on.
 * Importing this module has no effect; the first {@link native} call loads kernel32.
 *
 * @module
 */
import { loadBun } from "./bun.ts";
import { loadDeno } from "./deno.ts";
import type { Native } from "./kernel32.ts";

const g = globalThis as unknown as {
  Deno?: { build: { os: string }; version: { deno: string } };
  Bun?: { version: string };
  process?: { platform: string; versions?: Record<string, string> };
};

/** The JS runtime: "deno", "bun", "node" or "unknown". */
export function runtimeName(): string {
  if (g.Bun) return "bun";
  if (g.Deno) return "deno";
  if (g.process?.versions?.node) return "node";
  return "unknown";
}

/** The runtime and its version, e.g. "Deno 2.9.5". */
export function runtimeDescription(): string {
  if (g.Bun) return `Bun ${g.Bun.version}`;
  if (g.Deno) return `Deno ${g.Deno.version.deno}`;
  if (g.process?.versions?.node) return `Node ${g.process.versions.node}`;
  return "an unknown runtime";
}

/** The operating system, in the runtime's words ("windows", "win32", "linux", …). */
export function platformName(): string {
  return g.Deno?.build.os ?? g.process?.platform ?? "unknown";
}

/** True on Windows. */
export function isWindows(): boolean {
  const p = platformName();
  return p === "windows" || p === "win32";
}

let loaded: Native | Error | undefined;

/**
 * The loaded FFI for this runtime. Throws an Error that names the platform and runtime when
 * there is no kernel32 to bind (not Windows, or a runtime without FFI).
 */
export function native(): Native {
  loaded ??= load();
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

function load(): Native | Error {
  if (!isWindows()) {
    return new Error(
      `winpipe needs Windows named pipes, but this is ${platformName()} (${runtimeDescription()})`,
    );
  }
  try {
    const r = runtimeName();
    if (r === "bun") return loadBun();
    if (r === "deno") return loadDeno();
    return new Error(`winpipe runs on Deno or Bun; this is ${runtimeDescription()}`);
  } catch (cause) {
    return new Error(
      `winpipe could not load kernel32 through ${runtimeDescription()}'s FFI`
        + (runtimeName() === "deno" ? " (run with --allow-ffi)" : ""),
      { cause },
    );
  }
}
