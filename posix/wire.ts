/**
 * The runtimes' own Unix sockets behind one small face ({@link Wire}): `Deno.connect` and
 * `Deno.listen` with `transport: "unix"`, or `Bun.connect` and `Bun.listen` with `unix`. Their
 * types are declared here, only what is used, so that this file type-checks in both runtimes.
 *
 * @module
 */
import { runtimeName } from "../ffi/runtime.ts";
import { errorWith, UnixSocket, type Wire, type WireSink } from "./socket.ts";

interface DenoConn {
  closeWrite(): Promise<void>;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  ref(): void;
  unref(): void;
}
interface DenoListener extends AsyncIterable<DenoConn> {
  accept(): Promise<DenoConn>;
  close(): void;
  ref(): void;
  unref(): void;
}
interface DenoNet {
  connect(o: { transport: "unix"; path: string }): Promise<DenoConn>;
  listen(o: { transport: "unix"; path: string }): DenoListener;
}

interface BunSocket {
  data: { sink: WireSink; wire: BunWire } | undefined;
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  shutdown(halfClose?: boolean): void;
  pause(): void;
  resume(): void;
  ref(): void;
  unref(): void;
}
interface BunHandlers {
  open?(s: BunSocket): void;
  data(s: BunSocket, d: Uint8Array): void;
  drain(s: BunSocket): void;
  end(s: BunSocket): void;
  close(s: BunSocket, error?: unknown): void;
  error(s: BunSocket, error: unknown): void;
}
interface BunListener {
  stop(closeActive?: boolean): void;
  ref(): void;
  unref(): void;
}
interface BunNet {
  connect(
    o: { unix: string; socket: BunHandlers; data?: unknown; allowHalfOpen?: boolean },
  ): Promise<BunSocket>;
  listen(o: { unix: string; socket: BunHandlers; allowHalfOpen?: boolean }): BunListener;
}

const g = globalThis as unknown as { Deno?: DenoNet; Bun?: BunNet };

/** One `conn.read` in Deno's pump: 64 KiB, the socket buffer's usual size. */
const PUMP_READ = 64 * 1024;
/** Pump buffers kept for reuse: the read-ahead's worth, and one more. */
const SPARE = 17;

class DenoWire implements Wire {
  readonly #conn: DenoConn;
  readonly #sink: WireSink;
  #paused = false;
  #pumping = false;
  #closed = false;
  #buffer = new Uint8Array(PUMP_READ);
  /** Pump buffers the socket has copied out of, for the next reads (at most {@link SPARE}). */
  #spare: Uint8Array<ArrayBuffer>[] = [];

  constructor(conn: DenoConn, sink: WireSink) {
    this.#conn = conn;
    this.#sink = sink;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#paused && !this.#closed) {
        const b = this.#buffer;
        const n = await this.#conn.read(b);
        if (n === null) return this.#sink.end();
        // A full buffer is handed over whole (a spare one, else a new one, takes its place); a
        // partial one is copied out. The socket hands a buffer back (recycle) once it has copied
        // it into a reader's: reusing it spares an allocation and fresh pages each 64 KiB read.
        if (n > PUMP_READ / 2) {
          this.#buffer = this.#spare.pop() ?? new Uint8Array(PUMP_READ);
          this.#sink.push(b.subarray(0, n));
        } else {
          this.#sink.push(b.slice(0, n));
        }
      }
    } catch (e) {
      this.#sink.end(this.#closed ? undefined : e);
    } finally {
      this.#pumping = false;
    }
  }

  recycle(data: Uint8Array): void {
    // Only a whole pump buffer of ours; a copy made for a short read is left to the GC.
    const memory = data.buffer;
    if (!(memory instanceof ArrayBuffer) || memory.byteLength !== PUMP_READ) return;
    if (this.#spare.length < SPARE) this.#spare.push(new Uint8Array(memory));
  }

  resume(): void {
    this.#paused = false;
    if (!this.#pumping && !this.#closed) void this.#pump();
  }

  pause(): void {
    this.#paused = true;
  }

  write(bytes: Uint8Array, onDone: (error: unknown, bytes: number) => void): undefined {
    this.#conn.write(bytes).then((n) => onDone(null, n), (e) => onDone(e, 0));
    return undefined;
  }

  cancelWrite(): boolean {
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  closeWrite(): void {
    this.#conn.closeWrite().catch(() => {});
  }

  ref(): void {
    this.#conn.ref();
  }

  unref(): void {
    this.#conn.unref();
  }
}

class BunWire implements Wire {
  readonly #socket: BunSocket;
  #rest: { bytes: Uint8Array; offset: number; onDone(e: unknown, n: number): void } | null = null;
  #closed = false;
  /** The owner's ref() or unref(). */
  #refd = true;
  /** The peer has finished writing (its FIN): only a write in flight still needs the socket. */
  #peerEnded = false;

  constructor(socket: BunSocket) {
    this.#socket = socket;
  }

  resume(): void {
    this.#socket.resume();
  }

  pause(): void {
    this.#socket.pause();
  }

  write(bytes: Uint8Array, onDone: (error: unknown, bytes: number) => void): number | undefined {
    const n = this.writeNow(bytes);
    if (n === bytes.byteLength) return n;
    this.#rest = { bytes, offset: n, onDone };
    this.#writeWaits();
    return undefined;
  }

  /** As much of `bytes` as the socket takes now (Bun copies it out); never while one is short. */
  writeNow(bytes: Uint8Array): number {
    if (this.#rest) return 0;
    const n = this.#socket.write(bytes);
    if (n < 0) throw errorWith("EPIPE");
    return n;
  }

  /** Bun's drain: the socket has room again, so the rest of a short write goes now. */
  drain(): void {
    const rest = this.#rest;
    if (!rest) return;
    const n = this.#socket.write(rest.bytes.subarray(rest.offset));
    if (n < 0) {
      this.#rest = null;
      this.#writeWaits();
      rest.onDone(errorWith("EPIPE"), rest.offset);
      return;
    }
    rest.offset += n;
    if (rest.offset < rest.bytes.byteLength) return;
    this.#rest = null;
    this.#writeWaits();
    rest.onDone(null, rest.bytes.byteLength);
  }

  cancelWrite(): boolean {
    this.#rest = null;
    this.#writeWaits();
    return true;
  }

  /**
   * The peer's FIN. The socket is half-open (`allowHalfOpen`), so this side may still write (a
   * reply after the request's end); Bun's default closed both directions here, and the reply was
   * lost. As a `Deno.Conn` with nothing pending, it then holds the process only while a write is.
   */
  peerEnded(): void {
    this.#peerEnded = true;
    this.#hold();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
  }

  closeWrite(): void {
    this.#socket.shutdown();
  }

  ref(): void {
    this.#refd = true;
    this.#hold();
  }

  unref(): void {
    this.#refd = false;
    this.#hold();
  }

  /**
   * A write began or stopped waiting for room. Until the peer's end the socket is held whatever
   * the writes do, so this costs the write path nothing then.
   */
  #writeWaits(): void {
    if (this.#peerEnded) this.#hold();
  }

  /** Holds the process while the owner wants it and something can still come or go. */
  #hold(): void {
    if (this.#refd && (!this.#peerEnded || this.#rest !== null)) this.#socket.ref();
    else this.#socket.unref();
  }
}

const bunHandlers: BunHandlers = {
  // Bun hands each chunk over as its own buffer.
  data: (s, d) => s.data?.sink.push(d),
  drain: (s) => s.data?.wire.drain(),
  end: (s) => {
    s.data?.wire.peerEnded();
    s.data?.sink.end();
  },
  close: (s, error) => s.data?.sink.gone(error),
  error: (s, error) => s.data?.sink.gone(error),
};

/** Connects to the socket at `path` with the runtime's own client. */
export async function wireConnect(path: string): Promise<UnixSocket> {
  const socket = new UnixSocket(path);
  if (runtimeName() === "bun") {
    const s = await g.Bun!.connect({
      unix: path,
      socket: bunHandlers,
      data: undefined,
      allowHalfOpen: true, // a reply after the peer's end (see BunWire.peerEnded)
    });
    const wire = new BunWire(s);
    s.data = { sink: socket, wire };
    return socket.attach(wire);
  }
  const conn = await g.Deno!.connect({ transport: "unix", path });
  return socket.attach(new DenoWire(conn, socket));
}

/** A listening socket: connections go to `onConnection` as they come. */
export interface WireListener {
  /** Stops listening; the runtime removes the socket file, by then or by `closed`. */
  close(): void;
  /**
   * Settles once the runtime is done with the listener. Deno removes the socket file only when
   * its pending accept has ended, a tick after `close()` (measured, Deno 2.9); Bun at once.
   */
  closed: Promise<void>;
  ref(): void;
  unref(): void;
}

/**
 * Listens at `path` with the runtime's own server (the caller has made sure the path is free).
 * `onError` hears of a failed accept, after which no more connections come.
 */
export function wireListen(
  path: string,
  onConnection: (socket: UnixSocket) => void,
  onError: (error: unknown) => void,
): WireListener {
  if (runtimeName() === "bun") {
    const listener = g.Bun!.listen({
      unix: path,
      allowHalfOpen: true, // a reply after the peer's end (see BunWire.peerEnded)
      socket: {
        ...bunHandlers,
        open: (s) => {
          const socket = new UnixSocket(path);
          const wire = new BunWire(s);
          s.data = { sink: socket, wire };
          onConnection(socket.attach(wire));
        },
      },
    });
    return {
      close: () => listener.stop(false),
      closed: Promise.resolve(),
      ref: () => listener.ref(),
      unref: () => listener.unref(),
    };
  }
  if (!g.Deno) throw new Error("winpipe's Unix sockets need Deno or Bun");
  const listener = g.Deno.listen({ transport: "unix", path });
  let closed = false;
  const ended = (async () => {
    try {
      for (;;) {
        const conn = await listener.accept();
        const socket = new UnixSocket(path);
        onConnection(socket.attach(new DenoWire(conn, socket)));
      }
    } catch (e) {
      if (!closed) onError(e);
    }
  })();
  return {
    close: () => {
      closed = true;
      listener.close();
    },
    closed: ended,
    ref: () => listener.ref(),
    unref: () => listener.unref(),
  };
}
