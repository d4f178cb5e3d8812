/**
 * Pipe names: `\\.\pipe\NAME` and `\\?\pipe\NAME` are local; `\\SERVER\pipe\NAME` is remote and
 * refused unless asked for. Every check runs before any system call.
 *
 * Win32 rewrites `\\.\` paths before it opens them (`GetFullPathNameW`): `.` and `..` segments
 * are resolved and trailing dots and spaces are dropped. So `\\.\pipe\..\UNC\host\pipe\x` opens
 * `\\.\UNC\host\pipe\x` (SMB, with this user's credentials), and `\\.\pipe\..\COM1` a device.
 * Names are therefore refused if any segment after `pipe\` is empty, is `.` or `..`, or ends in
 * a dot or a space, or if they contain a `/` (which Win32 reads as `\`).
 *
 * @module
 */

/** Options that bear on which names are accepted. */
export interface PipeNameOptions {
  /** Accept `\\server\pipe\name` (SMB). Default false. */
  allowRemote?: boolean;
}

// Win32 limits a pipe path to 256 characters (CreateNamedPipeW, "lpName").
const MAX_PIPE_PATH = 256;
const PIPE_PATH = /^\\\\([^\\/]+)\\pipe\\(.*)$/is;

/**
 * Checks a pipe path and returns it as the NUL-terminated UTF-16 `CreateFileW` wants.
 * Throws a `TypeError` that says what is wrong. `remoteHint` names the switch that allows
 * remote names, for the message ("{ allowRemote: true }" in the API, "--allow-remote" in the CLI).
 */
export function validatePipeName(
  name: unknown,
  options: PipeNameOptions = {},
  remoteHint = "{ allowRemote: true } is given",
): Uint16Array {
  if (typeof name !== "string") {
    throw new TypeError(`pipe name must be a string like \\\\.\\pipe\\NAME, got ${describe(name)}`);
  }
  if (name.includes("\0")) throw new TypeError("pipe name must not contain NUL characters");
  const m = PIPE_PATH.exec(name);
  if (!m) {
    throw new TypeError(
      `not a pipe name: ${
        JSON.stringify(name)
      }; expected \\\\.\\pipe\\NAME (write it as String.raw\`\\\\.\\pipe\\NAME\`)`,
    );
  }
  if (name.length > MAX_PIPE_PATH) {
    throw new TypeError(`pipe name is ${name.length} characters; Windows allows ${MAX_PIPE_PATH}`);
  }
  const [, host, rest] = m;
  if (host !== "." && host !== "?") {
    if (/[. ]$/.test(host)) {
      throw new TypeError(`${JSON.stringify(name)}: the host name must not end in "." or " "`);
    }
    if (options.allowRemote !== true) {
      throw new TypeError(
        `${
          JSON.stringify(name)
        } names a pipe on the remote host "${host}"; remote pipes are refused unless ${remoteHint}`,
      );
    }
  }
  const problem = segmentProblem(rest);
  if (problem) {
    throw new TypeError(
      `${JSON.stringify(name)}: ${problem}; Windows would rewrite the name before opening it, `
        + "possibly to another host or device, so it is refused",
    );
  }
  return toWide(name);
}

/** What is wrong with the part after `pipe\`, or undefined. */
function segmentProblem(rest: string): string | undefined {
  if (rest.includes("/")) return `"/" after "pipe\\" is read as "\\"`;
  for (const segment of rest.split("\\")) {
    if (segment === "") return "an empty segment (\\\\ or a trailing \\)";
    if (segment === "." || segment === "..") return `a "${segment}" segment`;
    if (/[. ]$/.test(segment)) {
      return `the segment ${JSON.stringify(segment)} ends in "." or " ", which Windows drops`;
    }
  }
  return undefined;
}

/** True when the (already validated) name is local: `\\.\pipe\…` or `\\?\pipe\…`. */
export function isLocalPipeName(name: string): boolean {
  return /^\\\\[.?]\\/.test(name);
}

/** NUL-terminated UTF-16LE, for the `W` functions. */
export function toWide(s: string): Uint16Array {
  const out = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  if (typeof v === "string") return `string ${JSON.stringify(v.slice(0, 40))}`;
  return `${typeof v} ${String(v)}`;
}
