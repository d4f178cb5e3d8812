// Types of scripts/windows_paths.mjs (a plain module, so that Node runs it without a build).

/** The places npm puts deno.exe and bun.exe under `repo`'s node_modules, best first. */
export function runtimeCandidates(repo: string, arch: string): { deno: string[]; bun: string[] };

/** The first existing candidate of each runtime, or null when npm installed none. */
export function findRuntimes(
  repo: string,
  arch: string,
  exists: (path: string) => boolean,
): { deno: string | null; bun: string | null };

/** WINPIPE_NODE, WINPIPE_DENO and WINPIPE_BUN for the Windows suites; values in `env` are kept. */
export function suiteEnv(
  found: { node: string; deno: string | null; bun: string | null },
  env: Record<string, string | undefined>,
): Record<string, string>;

/** One argument for a command line that `cmd.exe /d /s /c` runs; `batch` for a .cmd program. */
export function quoteForCmd(arg: string, options?: { batch?: boolean }): string;

/** A command line for `spawnSync(line, { shell: true })` on Windows. */
export function cmdLine(program: string, args: string[], options?: { batch?: boolean }): string;
