// @ts-self-types="./windows_paths.d.mts"
// What scripts/test.mjs and scripts/demo.mjs need on Windows, as pure functions that
// tests/windows_paths.test.ts checks on any OS: where npm put the real deno.exe and bun.exe (a
// child process can start them without a shell), the environment the Windows suites read, and a
// cmd.exe command line for the one program that needs a shell (npm, which is npm.cmd).
import { win32 } from "node:path";

/**
 * The places npm puts the Windows executables of Deno and Bun in `repo`'s node_modules, best
 * first. `arch` is `process.arch` ("x64" or "arm64").
 *
 * - deno: the `deno` package's postinstall links (or copies) the platform package's deno.exe
 *   into node_modules/deno; its bin.cjs falls back to the platform package, and so does this.
 * - bun: the `bun` package ships a placeholder bin/bun.exe, and its postinstall moves the
 *   platform package's bun.exe over it. So the platform package's copy, while it is there, is the
 *   real one (the postinstall has not run), and once it is gone bin/bun.exe is.
 *
 * node_modules/.bin holds only shims there (deno.cmd, bun.cmd), which need cmd.exe.
 * @param {string} repo
 * @param {string} arch
 * @returns {{ deno: string[], bun: string[] }}
 */
export function runtimeCandidates(repo, arch) {
  const nm = win32.join(repo, "node_modules");
  const bunArch = arch === "arm64" ? "aarch64" : arch;
  return {
    deno: [
      win32.join(nm, "deno", "deno.exe"),
      win32.join(nm, "@deno", `win32-${arch}`, "deno.exe"),
    ],
    bun: [
      win32.join(nm, "@oven", `bun-windows-${bunArch}`, "bin", "bun.exe"),
      win32.join(nm, "bun", "bin", "bun.exe"),
    ],
  };
}

/**
 * The first existing candidate of each runtime, or null when npm installed none.
 * @param {string} repo
 * @param {string} arch
 * @param {(path: string) => boolean} exists
 * @returns {{ deno: string | null, bun: string | null }}
 */
export function findRuntimes(repo, arch, exists) {
  const c = runtimeCandidates(repo, arch);
  return { deno: c.deno.find(exists) ?? null, bun: c.bun.find(exists) ?? null };
}

/**
 * The variables the Windows suites, the demo and the bench read for their child processes
 * (scripts/wine.sh sets them under Wine): WINPIPE_NODE, WINPIPE_DENO, WINPIPE_BUN. A value
 * already in `env` is kept; a runtime not found is left out.
 * @param {{ node: string, deno: string | null, bun: string | null }} found
 * @param {Record<string, string | undefined>} env
 * @returns {Record<string, string>}
 */
export function suiteEnv(found, env) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, path] of [["NODE", found.node], ["DENO", found.deno], ["BUN", found.bun]]) {
    const key = `WINPIPE_${name}`;
    const value = env[key] || path;
    if (value) out[key] = value;
  }
  return out;
}

// cmd.exe's metacharacters, and the space and the quote, which it also splits and groups on.
const CMD_META = /([()\][%!^"`<>&|;, *?])/g;
// Arguments that need no quoting at all (kept as they are, for a readable command line).
const PLAIN = /^[A-Za-z0-9_\-./\\:@+]+$/;

/**
 * One argument for a command line that `cmd.exe /d /s /c` runs (what `shell: true` runs on
 * Windows, with the arguments joined unquoted). First quoted for the program's parser
 * (CommandLineToArgvW and the C runtime: backslashes are literal except before a quote), then
 * each cmd.exe metacharacter, the quotes included, escaped with a caret, so that cmd.exe sees no
 * quoted region, no `&`, `|`, `<`, `>` and no `%VAR%`. A batch file (`batch`: npm.cmd, the .cmd
 * shims) passes `%*` through cmd.exe's parser a second time, so it gets a second caret. A line
 * break or NUL cannot be passed at all: a TypeError.
 * @param {string} arg
 * @param {{ batch?: boolean }} [options]
 * @returns {string}
 */
export function quoteForCmd(arg, { batch = false } = {}) {
  // cmd.exe ends the command at a line break, and no command line can hold a NUL.
  if (/[\r\n\0]/.test(arg)) {
    throw new TypeError(
      `cmd.exe cannot pass a line break or NUL in an argument: ${JSON.stringify(arg)}`,
    );
  }
  if (PLAIN.test(arg)) return arg;
  // Backslashes before a quote are doubled and the quote escaped; backslashes at the end are
  // doubled, since the closing quote follows them.
  let s = `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
  s = s.replace(CMD_META, "^$1");
  if (batch) s = s.replace(CMD_META, "^$1");
  return s;
}

/**
 * A whole command line for `spawnSync(line, { shell: true })` on Windows: the program name with
 * its metacharacters escaped once and not quoted (cmd.exe reads it once, to find the program; the
 * approach of the cross-spawn package), its arguments as `quoteForCmd` makes them.
 * @param {string} program
 * @param {string[]} args
 * @param {{ batch?: boolean }} [options]
 * @returns {string}
 */
export function cmdLine(program, args, options = {}) {
  return [program.replace(CMD_META, "^$1"), ...args.map((a) => quoteForCmd(a, options))].join(
    " ",
  );
}
