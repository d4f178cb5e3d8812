/**
 * A real server end for the Windows suites, made through the same FFI and completion path as
 * the writer: CreateNamedPipeW (overlapped), ConnectNamedPipe and ReadFile on the thread pool.
 */
import { PipeError, Win32 } from "../../core/errors.ts";
import { toWide } from "../../core/names.ts";
import {
  FILE_FLAG_OVERLAPPED,
  PIPE_ACCESS_INBOUND,
  PIPE_REJECT_REMOTE_CLIENTS,
  PIPE_TYPE_BYTE,
} from "../../ffi/kernel32.ts";
import { native } from "../../ffi/runtime.ts";
import { connect, listen } from "../../mod.ts";
import { type IoResult, startFailed } from "../../windows/completion/mod.ts";
import { Operation, OverlappedPipe } from "../../windows/completion/mod.ts";
import { securityAttributes } from "../../windows/security.ts";

let counter = 0;
/** A pipe name unique to this process and call. */
export function uniqueName(tag: string): string {
  return String
    .raw`\\.\pipe\winpipe-test-${tag}-${native().kernel32.GetCurrentProcessId()}-${++counter}`;
}

export interface ServerEndOptions {
  inBufferSize?: number;
  maxInstances?: number;
}

export class ServerEnd {
  readonly name: string;
  readonly pipe: OverlappedPipe;
  readonly #buffer: Uint8Array;

  private constructor(name: string, pipe: OverlappedPipe, readSize: number) {
    this.name = name;
    this.pipe = pipe;
    this.#buffer = new Uint8Array(new ArrayBuffer(readSize));
  }

  /** An inbound, overlapped byte-pipe instance, bound to the thread pool. */
  static create(name: string, options: ServerEndOptions = {}, readSize = 64 * 1024): ServerEnd {
    const k = native().kernel32;
    const inBuf = options.inBufferSize ?? 64 * 1024;
    const handle = k.CreateNamedPipeW(
      toWide(name),
      PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED,
      PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS,
      options.maxInstances ?? 1,
      0,
      inBuf,
      0,
      securityAttributes(),
    );
    if (handle === 0xffff_ffff_ffff_ffffn) {
      throw new PipeError({ errno: k.GetLastError(), syscall: "CreateNamedPipeW", path: name });
    }
    return new ServerEnd(name, OverlappedPipe.bind(handle, { owned: true, path: name }), readSize);
  }

  #op(
    syscall: string,
    call: (h: bigint, ov: bigint) => number,
    data: Uint8Array | null,
  ): Promise<IoResult> {
    return new Promise((resolve, reject) => {
      const r = this.pipe.start(syscall, call, data, resolve);
      if (!(r instanceof Operation)) {
        if (!startFailed(r)) resolve(r); // completed at once
        else if (r.error === Win32.ERROR_PIPE_CONNECTED) resolve({ error: 0, bytes: 0 });
        else if (r.error === Win32.ERROR_BROKEN_PIPE) resolve({ error: r.error, bytes: 0 });
        else reject(new PipeError({ errno: r.error, syscall, path: this.name, detail: r.detail }));
      }
    });
  }

  /** Waits for a client (ConnectNamedPipe). */
  async connect(): Promise<void> {
    const k = native().kernel32;
    const r = await this.#op("ConnectNamedPipe", (h, ov) => k.ConnectNamedPipe(h, ov), null);
    if (r.error !== 0 && r.error !== Win32.ERROR_PIPE_CONNECTED) {
      throw new PipeError({ errno: r.error, syscall: "ConnectNamedPipe", path: this.name });
    }
  }

  /** One ReadFile; a copy of the bytes, or null at end of stream (109). */
  async read(): Promise<Uint8Array | null> {
    const k = native().kernel32;
    const { addressOf } = native();
    const buf = this.#buffer;
    const r = await this.#op(
      "ReadFile",
      (h, ov) => k.ReadFile(h, addressOf(buf), buf.byteLength, null, ov),
      buf,
    );
    if (r.error === Win32.ERROR_BROKEN_PIPE) return null;
    if (r.error !== 0) {
      throw new PipeError({ errno: r.error, syscall: "ReadFile", path: this.name });
    }
    return buf.slice(0, r.bytes);
  }

  /** Reads until end of stream, handing each piece to `onData`. Returns the byte count. */
  async drain(onData?: (bytes: Uint8Array) => void | Promise<void>): Promise<number> {
    let total = 0;
    for (let b; (b = await this.read()) !== null;) {
      total += b.byteLength;
      await onData?.(b);
    }
    return total;
  }

  /** Releases the instance (closing the handle ends the client's pipe). */
  close(): Promise<void> {
    return this.pipe.release();
  }
}

/** Rejects if `p` does not settle within `ms`: a hang is a failure, not a stuck run. */
export function within<T>(ms: number, p: Promise<T>, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Position-dependent test data: byte p of the stream is pool[p % P], P prime, so a dropped,
 * repeated or reordered byte shows.
 */
export class Pattern {
  static readonly P = 1_048_583;
  readonly doubled: Uint8Array;
  constructor(seed = 1) {
    const pool = new Uint8Array(Pattern.P);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < pool.length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      pool[i] = x & 0xff;
    }
    this.doubled = new Uint8Array(2 * Pattern.P);
    this.doubled.set(pool);
    this.doubled.set(pool, Pattern.P);
  }
  /** The `length` (≤ P) bytes at stream position `position`. */
  at(position: number, length: number): Uint8Array {
    if (length > Pattern.P) throw new RangeError(`Pattern.at: ${length} > ${Pattern.P} bytes`);
    const o = position % Pattern.P;
    return this.doubled.subarray(o, o + length);
  }
  /** A checker: feed it what arrived; it throws at the first wrong byte. */
  verifier() {
    let position = 0;
    return {
      check: (bytes: Uint8Array) => {
        for (let off = 0; off < bytes.byteLength;) {
          const n = Math.min(bytes.byteLength - off, Pattern.P);
          const want = this.at(position, n);
          for (let i = 0; i < n; i++) {
            if (bytes[off + i] !== want[i]) {
              throw new Error(`byte ${position + i} is ${bytes[off + i]}, expected ${want[i]}`);
            }
          }
          off += n;
          position += n;
        }
      },
      get position() {
        return position;
      },
    };
  }
}

/**
 * A listen() server on a fresh name, a connect() client, and the server's side of it (`conn`).
 * `close()` closes both ends, then the server.
 */
export async function pair(
  tag: string,
  options: { server?: Parameters<typeof listen>[1]; client?: Parameters<typeof connect>[1] } = {},
) {
  const name = uniqueName(tag);
  const server = listen(name, options.server);
  const accepted = server.accept();
  const client = await connect(name, options.client);
  const conn = (await accepted)!;
  return {
    name,
    server,
    client,
    conn,
    async close() {
      await Promise.all([client.close(), conn.close()]);
      await server.close();
    },
  };
}
