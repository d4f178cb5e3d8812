#!/usr/bin/env bun
/**
 * The `winpipe` command.
 *
 * - `winpipe send <pipe> [file]` streams a file, or standard input, into a named pipe through a
 *   {@link PipeWriter}.
 * - `winpipe recv <pipe> [file]` listens, takes one client, and writes what it sends to the file
 *   or standard output.
 * - `winpipe relay <pipe>` copies standard input to the pipe and the pipe to standard output
 *   until the pipe ends, the job npiperelay does for WSL users reaching `\\.\pipe\docker_engine`.
 *
 * On a terminal, each shows its progress on stderr: bytes and rate in binary units (KiB, MiB,
 * MiB/s), and a bar and percentage when the size is known (`send FILE`). Each exits 0 on success, 1 on failure
 * (with the error, whose message names its Win32 `ERROR_*` code), and 2 on a usage error.
 *
 * @example Deno
 * ```sh
 * deno run --allow-ffi --allow-read jsr:@winpipe/winpipe/cli send '\\.\pipe\my-app' big.bin
 * ```
 *
 * @example Bun
 * ```sh
 * bunx winpipe send '\\.\pipe\my-app' big.bin
 * some-command | bunx winpipe send --wait '\\.\pipe\my-app'
 * ```
 *
 * @module
 */
import { realpathSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { isLocalPipeName, resolveEndpoint, validatePipeName } from "./core/names.ts";
import { isWindows } from "./ffi/runtime.ts";
import {
  connect,
  listen,
  type PipeConnection,
  PipeError,
  type PipeServer,
  PipeWriter,
} from "./mod.ts";

/** What {@link main} prints to; the process's streams by default. */
export interface CliIo {
  /**
   * Where output goes. When `once` is present, a `write()` that returns false waits for "drain";
   * when `removeListener` is present too, "error" or "close" also ends the wait (and the command),
   * and the wait removes every listener it added, whichever event fires.
   */
  stdout: {
    write(s: string | Uint8Array): unknown;
    once?(event: "drain" | "error" | "close", listener: (e?: unknown) => void): unknown;
    removeListener?(event: "drain" | "error" | "close", listener: (e?: unknown) => void): unknown;
  };
  /** Where progress and errors go; progress is drawn only when `isTTY`, within `columns`. */
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** What `send` and `relay` read when no file is given. */
  stdin: AsyncIterable<Uint8Array>;
}

const USAGE = `usage: winpipe send  [options] <pipe> [file]   FILE (or stdin) into the pipe
       winpipe recv  [options] <pipe> [file]   listen; one client's bytes to FILE (or stdout)
       winpipe relay [options] <pipe>          stdin to the pipe, the pipe to stdout

PIPE is a bare name like my-app (\\\\.\\pipe\\my-app on Windows, a socket in a private
directory on Linux and macOS), or a full name: \\\\.\\pipe\\NAME, or a socket path.

options:
  --wait            send/relay: wait for the pipe to be created (up to --timeout)
  --timeout <ms>    send/relay: how long to retry a busy (or missing) pipe; default 5000
  --allow-remote    send/relay: accept \\\\server\\pipe\\name
  --message         recv/relay: a message pipe
  --exit-on-stdin-eof  relay: end when stdin ends too, once the replies already in the
                    pipe are out (without it, relay ends when the pipe ends)
  --quiet           no progress display
  --help            this text
  --                the arguments after it are <pipe> and [file], even if they start with -
`;

/** Parsed arguments. */
interface CliArgs {
  pipe: string;
  file?: string;
  wait: boolean;
  timeout: number;
  allowRemote: boolean;
  quiet: boolean;
  message: boolean;
  exitOnStdinEof: boolean;
}

class UsageError extends Error {}

/** Each option and the commands that take it, as USAGE says; any other command refuses it. */
const OPTION_COMMANDS: ReadonlyMap<string, readonly string[]> = new Map([
  ["--wait", ["send", "relay"]],
  ["--timeout", ["send", "relay"]],
  ["--allow-remote", ["send", "relay"]],
  ["--message", ["recv", "relay"]],
  ["--exit-on-stdin-eof", ["relay"]],
  ["--quiet", ["send", "recv", "relay"]],
  ["-q", ["send", "recv", "relay"]],
]);

function parseArgs(command: string, args: string[]): CliArgs {
  const out: Partial<CliArgs> & { rest: string[] } = {
    wait: false,
    timeout: 5_000,
    allowRemote: false,
    quiet: false,
    message: false,
    exitOnStdinEof: false,
    rest: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.rest.push(...args.slice(i + 1)); // the rest are names, even one that starts with "-"
      break;
    }
    const takers = OPTION_COMMANDS.get(a);
    if (takers && !takers.includes(command)) {
      const who = `${takers.join(" and ")} ${takers.length === 1 ? "does" : "do"}`;
      throw new UsageError(`${command} does not take ${a} (only ${who})`);
    }
    if (a === "--wait") out.wait = true;
    else if (a === "--message") out.message = true;
    else if (a === "--exit-on-stdin-eof") out.exitOnStdinEof = true;
    else if (a === "--allow-remote") out.allowRemote = true;
    else if (a === "--quiet" || a === "-q") out.quiet = true;
    else if (a === "--timeout") out.timeout = milliseconds(a, args[++i]);
    else if (a.startsWith("-") && a !== "-") {
      throw new UsageError(`unknown option ${a} (a name that starts with "-" goes after --)`);
    } else out.rest.push(a);
  }
  const most = command === "relay" ? 1 : 2;
  if (out.rest.length < 1 || out.rest.length > most) {
    throw new UsageError(`${command} takes <pipe>${most === 2 ? " [file]" : ""}`);
  }
  const parsed = { ...(out as CliArgs), pipe: out.rest[0], file: out.rest[1] };
  checkPipeName(command, parsed);
  return parsed;
}

/**
 * An option's value in milliseconds: digits, with a decimal part or not. `Number()` alone would
 * read "" and " " as 0, and take "0x10" or "1e3".
 */
function milliseconds(option: string, value: string | undefined): number {
  const n = value !== undefined && /^\d+(?:\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n)) {
    throw new UsageError(
      `${option} takes milliseconds, a number >= 0 like 5000, not ${
        value === undefined ? "nothing" : JSON.stringify(value)
      }`,
    );
  }
  return n;
}

/**
 * The pipe name, checked before any system call, with the CLI's words: "--allow-remote", not the
 * API's `{ allowRemote: true }`. `recv` creates the pipe, and Windows creates only local ones.
 */
function checkPipeName(command: string, args: CliArgs): void {
  const allowRemote = command === "recv" || args.allowRemote;
  if (!isWindows()) {
    if (args.allowRemote) throw new UsageError("--allow-remote is for Windows pipes only");
    if (args.message) throw new UsageError("--message is for Windows pipes only");
    try {
      resolveEndpoint(args.pipe, {}, command);
    } catch (e) {
      throw e instanceof TypeError ? new UsageError(e.message) : e;
    }
    return;
  }
  try {
    if (!args.pipe.startsWith("\\\\")) resolveEndpoint(args.pipe, {}, command);
    else validatePipeName(args.pipe, { allowRemote }, "--allow-remote is given");
  } catch (e) {
    throw e instanceof TypeError ? new UsageError(e.message) : e;
  }
  if (command === "recv" && args.pipe.startsWith("\\\\") && !isLocalPipeName(args.pipe)) {
    throw new UsageError(
      `recv creates the pipe, so its name must be local (\\\\.\\pipe\\NAME), not ${
        JSON.stringify(args.pipe)
      }`,
    );
  }
}

/**
 * The progress display of `send`, `recv` and `relay`: on a terminal, one line on stderr, redrawn
 * at most every 100 ms, and a final line at the end; nothing at all otherwise.
 */
class Progress {
  /** The size, when known (`send FILE`): the line then has a bar and a percentage. */
  total: number | undefined;
  #done = 0;
  #drawnAt = -Infinity;
  #ended = false;
  readonly #start = performance.now();

  constructor(
    readonly stderr: CliIo["stderr"],
    readonly enabled: boolean,
    total?: number,
  ) {
    this.total = total;
  }

  /** `done` bytes so far; redraws if the last drawing is 100 ms old. */
  update(done: number): void {
    this.#done = done;
    if (!this.enabled || this.#ended) return;
    const now = performance.now();
    if (now - this.#drawnAt < 100) return;
    this.#drawnAt = now;
    this.#draw(now);
  }

  /** Draws the final line (with `done`, if given) and ends it. Idempotent. */
  end(done: number = this.#done): void {
    if (this.#ended) return;
    this.#done = done;
    if (!this.enabled) return;
    this.#ended = true;
    this.#draw(performance.now());
    this.stderr.write("\n");
  }

  #draw(now: number): void {
    const seconds = Math.max((now - this.#start) / 1000, 1e-3);
    const line = progressLine(this.#done, this.total, this.#done / seconds, this.stderr.columns);
    this.stderr.write(`\r${line}\x1b[K`);
  }
}

/** The widest rate {@link formatBytes} makes: "1023.9 MiB/s". */
const RATE_WIDTH = 12;
const BAR_MAX = 40;
const BAR_MIN = 10;

/**
 * One progress line, at most `columns - 1` characters (the last column is left free, so that the
 * terminal does not wrap): `[####....]  66%  42.3 MiB / 64.0 MiB  88.1 MiB/s` when the total is
 * known, `42.3 MiB  88.1 MiB/s` when not. The bar shrinks to fit and is dropped when fewer than
 * 10 columns are left for it; its width depends only on `columns` and `total`, so it does not
 * jump as the figures change. When even the text does not fit, the total goes first, then the
 * rate, then the line is cut.
 *
 * @internal Exported for the tests.
 */
export function progressLine(
  done: number,
  total: number | undefined,
  bytesPerSecond: number,
  columns?: number,
): string {
  const room = Math.max(0, Math.floor(columns && columns > 0 ? columns : 80) - 1);
  const bytes = formatBytes(done);
  const rate = `${formatBytes(bytesPerSecond)}/s`;
  let texts: string[];
  let bar = "";
  if (total === undefined) {
    texts = [`${bytes}  ${rate}`, bytes];
  } else {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const size = formatBytes(total);
    texts = [`${percent}  ${bytes} / ${size}  ${rate}`, `${percent}  ${bytes}  ${rate}`, percent];
    // Room for the widest text this total can give: "100%  <size> / <size>  <widest rate>".
    const widest = 4 + 2 + size.length + 3 + size.length + 2 + RATE_WIDTH;
    const width = Math.min(BAR_MAX, room - widest - 3);
    if (width >= BAR_MIN) {
      bar = `[${"#".repeat(Math.floor(fraction * width)).padEnd(width, ".")}] `;
    }
  }
  if (bar && bar.length + texts[0].length <= room) return bar + texts[0];
  return texts.find((t) => t.length <= room) ?? texts[texts.length - 1].slice(0, room);
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The file's bytes, read into one buffer that is reused (`PipeWriter.write()` copies). */
async function* readChunks(file: FileHandle): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(256 * 1024);
  for (;;) {
    const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, null);
    if (bytesRead === 0) return;
    yield buffer.subarray(0, bytesRead);
  }
}

/** True when `args` and stderr call for a progress display. */
function showsProgress(args: CliArgs, io: CliIo): boolean {
  return !args.quiet && io.stderr.isTTY === true;
}

/** `send`: FILE (or stdin) into the pipe. */
async function send(args: CliArgs, io: CliIo): Promise<number> {
  // The file first: one that cannot be read fails before the pipe is opened.
  const file = args.file ? await open(args.file, "r") : undefined;
  try {
    const total = file ? (await file.stat()).size : undefined;
    const writer = await PipeWriter.open(args.pipe, {
      wait: args.wait,
      timeout: args.timeout,
      allowRemote: args.allowRemote,
    });
    const progress = new Progress(io.stderr, showsProgress(args, io), total);
    let sent = 0;
    try {
      for await (const chunk of file ? readChunks(file) : io.stdin) {
        if (!writer.write(chunk)) await waitForDrain(writer);
        sent += chunk.byteLength;
        progress.update(sent - writer.bytesToWrite);
      }
      await writer.close();
      progress.end(sent);
      return 0;
    } catch (e) {
      await writer.stop().catch(() => {});
      throw e;
    } finally {
      progress.end();
    }
  } finally {
    await file?.close();
  }
}

/**
 * Waits for a writer's `drain`, or rejects with its error (the `error` of a `PipeErrorEvent`),
 * and removes both listeners whichever fires: a writer that waits a million times still has no
 * listener of ours left.
 *
 * @internal Exported for the tests.
 */
export function waitForDrain(writer: EventTarget): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (event: Event) => {
      writer.removeEventListener("drain", done);
      writer.removeEventListener("error", done);
      if (event.type === "drain") resolve();
      else reject((event as Event & { error?: unknown }).error ?? new Error("the writer failed"));
    };
    writer.addEventListener("drain", done);
    writer.addEventListener("error", done);
  });
}

/**
 * Writes to stdout, honouring its backpressure.
 *
 * @internal Exported for the tests.
 */
export async function toStdout(io: CliIo, chunk: Uint8Array): Promise<void> {
  const out = io.stdout;
  if (out.write(chunk) !== false || !out.once) return;
  const once = out.once.bind(out);
  const removeListener = out.removeListener?.bind(out);
  if (!removeListener) {
    // Only "drain" can be waited for: a `once` listener goes away as it fires, but one for
    // "error" or "close" would stay behind after every drain.
    await new Promise<void>((resolve) => once("drain", () => resolve()));
    return;
  }
  // Backpressure: wait for drain, but not for ever when stdout fails or closes meanwhile. Each
  // wait removes all three listeners, whichever fires: stdout keeps none of ours between waits.
  await new Promise<void>((resolve, reject) => {
    const done = (e?: unknown) => {
      removeListener("drain", onDrain);
      removeListener("error", onError);
      removeListener("close", onClose);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (e?: unknown) => done(e ?? new Error("standard output failed"));
    const onClose = () => done(new Error("standard output was closed"));
    once("drain", onDrain);
    once("error", onError);
    once("close", onClose);
  });
}

/** `recv`: listen, take one client, and write what it sends to FILE or stdout. */
async function recv(args: CliArgs, io: CliIo): Promise<number> {
  // The file first: when it cannot be opened, nothing is listening yet (a listening server would
  // keep the process alive).
  const file = args.file ? await open(args.file, "w") : undefined;
  let fileClosed: Promise<void> | undefined;
  const closeFile = () => (fileClosed ??= file?.close() ?? Promise.resolve());
  let server: PipeServer | undefined;
  let conn: PipeConnection | null = null;
  let progress: Progress | undefined;
  // Ended by a signal while it listens, it takes its socket file away first.
  const unhook = onTermination(() => server?.close() ?? Promise.resolve());
  try {
    server = listen(args.pipe, { ...(args.message ? { messageMode: true } : {}), maxInstances: 1 });
    conn = await server.accept();
    if (!conn) return 1;
    await server.close(); // one client: stop listening
    unhook();
    progress = new Progress(io.stderr, showsProgress(args, io));
    let received = 0;
    const reader = conn.readable.getReader();
    for (let r; !(r = await reader.read()).done;) {
      if (file) await file.write(r.value);
      else await toStdout(io, r.value);
      progress.update(received += r.value.byteLength);
    }
    progress.end(received);
    await conn.close();
    await closeFile();
    return 0;
  } finally {
    unhook();
    // Every path: an open connection or server would keep the process alive.
    progress?.end();
    await conn?.close().catch(() => {});
    await server?.close().catch(() => {});
    await closeFile().catch(() => {});
  }
}

/**
 * On Linux and macOS, SIGINT and SIGTERM run `cleanup` (a listening server's close, which removes
 * its socket file) and then end the process as the signal would have (130, 143); a socket file
 * left behind makes the next server's bind wait for a check. On Windows a pipe's name goes with
 * its process. Returns the way to stop listening for them.
 */
function onTermination(cleanup: () => Promise<void>): () => void {
  if (isWindows()) return () => {};
  const handler = (signal: string) => {
    void cleanup().catch(() => {}).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/** A promise that never settles: a race entrant that only its failure could end. */
const NEVER: Promise<never> = new Promise<never>(() => {});

/**
 * `relay`: stdin to the pipe and the pipe to stdout, as npiperelay does. It ends when the pipe
 * ends; with `--exit-on-stdin-eof`, also when stdin ends, once the replies already in the pipe
 * have reached stdout.
 */
async function relay(args: CliArgs, io: CliIo): Promise<number> {
  const conn = await connect(args.pipe, {
    wait: args.wait,
    timeout: args.timeout,
    allowRemote: args.allowRemote,
    messageMode: args.message,
  });
  const progress = new Progress(io.stderr, showsProgress(args, io));
  const stdin = io.stdin[Symbol.asyncIterator]();
  let stopped = false;
  let received = 0;
  let readingEnded = false;
  let onDelivery = () => {};

  // The pipe to stdout, until the pipe ends, a read fails, or the reader is cancelled.
  const reading = (async () => {
    try {
      const reader = conn.readable.getReader();
      for (let r; !(r = await reader.read()).done;) {
        await toStdout(io, r.value);
        progress.update(received += r.value.byteLength);
        onDelivery();
      }
    } finally {
      readingEnded = true;
      onDelivery();
    }
  })();

  // Stdin to the pipe: "stdin" once stdin has ended and every byte is in the pipe, "pipe" if
  // the peer went away first.
  const writing = (async (): Promise<"stdin" | "pipe"> => {
    const w = conn.writer;
    if (!w) return NEVER; // a read-only pipe: stdin is not read
    for (;;) {
      const r = await stdin.next();
      if (stopped) return "pipe";
      if (r.done) break;
      if (!w.write(r.value)) await waitForDrain(w);
    }
    // close(), not flush(): on a Unix socket it half-closes, so a peer that reads to the end
    // (an echo, a socat) answers and ends; a Windows pipe has no half-close, and it only flushes.
    await w.close();
    return "stdin";
  })().catch((e) => {
    if (e instanceof PipeError && e.peerGone) return "pipe" as const;
    throw e;
  });

  try {
    const endedBy = await Promise.race([
      conn.reader ? reading.then(() => "pipe" as const) : NEVER,
      writing.then((how) => {
        if (!conn.reader) return how; // a write-only pipe ends with stdin, or the peer
        return how === "stdin" && args.exitOnStdinEof ? how : NEVER; // else reading sees the end
      }),
    ]);
    if (endedBy === "stdin" && conn.reader) {
      // Our writes are in the pipe. The replies already waiting there go to stdout through the
      // read loop; then the read in flight is cancelled, and what it had taken goes too.
      while (!readingEnded && conn.reader.available() > 0) {
        await new Promise<void>((resolve) => (onDelivery = resolve));
      }
      const rest = await conn.reader.cancel();
      await reading; // its last stdout write has finished
      if (rest.byteLength > 0) {
        await toStdout(io, rest);
        received += rest.byteLength;
      }
    }
    progress.end(received);
    await conn.close().catch((e) => {
      if (!(e instanceof PipeError && e.peerGone)) throw e;
    });
    return 0;
  } finally {
    // Stop waiting for stdin, without awaiting it: stdin may never end.
    stopped = true;
    try {
      void Promise.resolve(stdin.return?.()).catch(() => {});
    } catch {
      // an iterator whose return() throws: nothing more to stop
    }
    progress.end();
    await conn.close().catch(() => {});
  }
}

/** The commands, by name: a Map, so that `constructor` or `__proto__` is no command. */
const COMMANDS: ReadonlyMap<string, (args: CliArgs, io: CliIo) => Promise<number>> = new Map([
  ["send", send],
  ["recv", recv],
  ["relay", relay],
]);

/**
 * Runs the command line `args` (without the program name) and resolves to the exit code.
 *
 * @example
 * ```ts
 * import { main } from "@winpipe/winpipe/cli";
 * const code = await main(["send", String.raw`\\.\pipe\my-app`, "data.bin"]);
 * ```
 */
export async function main(args: string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      (command === undefined ? io.stderr : io.stdout).write(USAGE);
      return command === undefined ? 2 : 0;
    }
    const run = COMMANDS.get(command);
    if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    if (rest.includes("--help")) {
      io.stdout.write(USAGE);
      return 0;
    }
    return await run(parseArgs(command, rest), io);
  } catch (e) {
    // Only what the user typed is a usage error; a TypeError from a run is a bug, not theirs.
    if (e instanceof UsageError) {
      io.stderr.write(`winpipe: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr.write(`winpipe: ${isBug(e) ? internalErrorText(e) : failureText(e)}\n`);
    return 1;
  }
}

/** True for the errors JavaScript throws for a bug (`x is not a function`, ...), not for I/O. */
function isBug(e: unknown): e is Error {
  return e instanceof TypeError || e instanceof ReferenceError || e instanceof RangeError;
}

/** "internal error: " and the error with its stack (or at least its name and message). */
function internalErrorText(e: Error): string {
  const stack = typeof e.stack === "string" && e.stack.includes(e.message) ? e.stack : undefined;
  return `internal error: ${stack ?? `${e.name}: ${e.message}`}`;
}

/**
 * An error's message, with its code (`ERROR_*` or `ENOENT`-like) in front only when the message
 * does not already carry it: a `PipeError`'s message always names its `ERROR_*`, and Node's fs
 * errors start with their code. `PipeError` and Node's errors both keep that name in `code`.
 */
function failureText(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown } | null | undefined;
  const message = typeof err?.message === "string" ? err.message : String(e);
  const code = typeof err?.code === "string" ? err.code : undefined;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * The part of a process stream (`process.stdout`, `process.stderr`) that {@link Output} uses.
 *
 * @internal Exported for the tests.
 */
export interface ProcessStream {
  write(chunk: string | Uint8Array, callback: (error?: Error | null) => void): boolean;
  once(event: "drain" | "error" | "close", listener: (e?: unknown) => void): unknown;
  removeListener(event: "drain" | "error" | "close", listener: (e?: unknown) => void): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * A process stream that remembers its last write, so that the program can wait until its output
 * is out before it exits. A stream's write callbacks come in order, and Bun calls an empty
 * write's callback at once, so the last non-empty write is the one to wait for. Its `once` and
 * `removeListener` are the stream's, so that a wait for drain removes the listeners it added.
 *
 * @internal Exported for the tests.
 */
export class Output {
  #last: Promise<void> = Promise.resolve();
  constructor(readonly stream: ProcessStream) {}

  write(chunk: string | Uint8Array): boolean {
    if (chunk.length === 0) return true;
    let ok = true;
    this.#last = new Promise<void>((resolve) => {
      ok = this.stream.write(chunk, () => resolve());
    });
    return ok;
  }

  once(event: "drain" | "error" | "close", listener: (e?: unknown) => void): void {
    this.stream.once(event, listener);
  }

  removeListener(event: "drain" | "error" | "close", listener: (e?: unknown) => void): void {
    this.stream.removeListener(event, listener);
  }

  get isTTY(): boolean {
    return this.stream.isTTY === true;
  }

  get columns(): number | undefined {
    return this.stream.columns;
  }

  /** Resolves once everything written so far has been handed to the system. */
  flushed(): Promise<void> {
    return this.#last;
  }
}

function processIo(): CliIo & { stdout: Output; stderr: Output } {
  return {
    stdout: new Output(process.stdout),
    stderr: new Output(process.stderr),
    stdin: process.stdin as unknown as AsyncIterable<Uint8Array>,
  };
}

/** What the built command says when Node runs it. */
const NOT_NODE =
  `winpipe runs on Deno or Bun, not Node (Node has no FFI; its own node:net does pipes):
  deno run --allow-ffi --allow-read jsr:@winpipe/winpipe/cli send|recv|relay ...
  bunx winpipe send|recv|relay ...
`;

/**
 * True when Node runs this module as its program (`node dist/cli.js`, or the npm bin link to
 * it). Node before 24.2 has no `import.meta.main`, so the script Node was given is compared
 * with this module, both with links resolved.
 */
function isNodeProgram(): boolean {
  if (process.versions.bun !== undefined || process.versions.deno !== undefined) return false;
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isNodeProgram()) {
  process.stderr.write(NOT_NODE);
  process.exitCode = 1;
} else if ((import.meta as { main?: boolean }).main) {
  const io = processIo();
  const code = await main(process.argv.slice(2), io);
  // End the process once the output is out: a stdin that is still open (relay, whose pipe has
  // ended) would otherwise keep it alive.
  await Promise.all([io.stdout.flushed(), io.stderr.flushed()]);
  process.exit(code);
}
