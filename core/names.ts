/**
 * Pipe names: `\\.\pipe\NAME` and `\\?\pipe\NAME` are local; `\\SERVER\pipe\NAME` is remote and
 * refused unless asked for, before any system call.
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
const PIPE_PATH = /^\\\\([^\\/]+)\\pipe\\(.+)$/i;

/**
 * Checks a pipe path and returns it as the NUL-terminated UTF-16 `CreateFileW` wants.
 * Throws a `TypeError` that says what is wrong.
 */
export function validatePipeName(name: unknown, options: PipeNameOptions = {}): Uint16Array {
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
  const host = m[1];
  if (host !== "." && host !== "?" && options.allowRemote !== true) {
    throw new TypeError(
      `${
        JSON.stringify(name)
      } names a pipe on the remote host "${host}"; remote pipes are refused unless { allowRemote: true } is given`,
    );
  }
  return toWide(name);
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
