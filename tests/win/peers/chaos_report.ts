/**
 * The chaos run's shared state: the failures, the statistics, what is under way, and the meeting
 * points where a client and the server side of its connection compare notes. One chaos process
 * (chaos_server.ts) holds one of each.
 */
import { PipeError } from "../../../mod.ts";
import { RUNTIME_OWNED_TYPES } from "../handles.ts";
import { within } from "../server_end.ts";
import { type Header, type Mismatch, type Mode, MODES } from "./chaos_protocol.ts";

export const KiB = 1024;
export const MiB: number = 1024 * KiB;
/** The largest single write a client makes. */
export const MAX_CHUNK: number = 256 * KiB;
/** Any one step (connect, a flush, a read, a close) must finish within this. */
export const STEP_MS = 15_000;
/** Either side of one connection must be done within this. */
export const CONNECTION_MS = 30_000;

/** What went wrong, in the order it was seen (at most 100). */
export const failures: string[] = [];
/** The run's counters, fresh: the timed session's count alone (the warm-up's are dropped). */
export const counters = () => ({
  clients: Object.fromEntries(MODES.map((m) => [m, 0])) as Record<Mode, number>,
  /** In-process clients of the server with small buffers. */
  smallBufferClients: 0,
  server: {
    connections: 0,
    /** Connections that ended before any byte (flash clients, children killed early). */
    empty: 0,
    byMode: Object.fromEntries(MODES.map((m) => [m, 0])) as Record<Mode, number>,
    bytesVerified: 0,
    bytesEchoed: 0,
    drops: 0,
    dropsWithReadInFlight: 0,
    cancelLeftoverBytes: 0,
  },
  clientSide: {
    bytesWritten: 0,
    echoBytesVerified: 0,
    readerCancelLeftoverBytes: 0,
    /** Bytes of writes in flight at a failure that still completed with success (counted late). */
    lateSuccessBytes: 0,
    /** serverDrop clients whose pending read ended (EOF) when the server went. */
    readsEndedByDrop: 0,
    /**
     * Connect attempts that timed out on ERROR_PIPE_BUSY while the server accepted other clients
     * meanwhile (so it was listening: the client lost the race for each freed instance), and
     * were made again.
     */
    busyRetries: 0,
  },
  children: {
    spawned: 0,
    killed: 0,
    killedBeforeHeader: 0,
    killedMidStream: 0,
    bytesBeforeDeath: 0,
    /** Children the server echoed to (its writes in flight when they died). */
    withEcho: 0,
  },
  /** Expected errors, by where and code (peer-gone errors of the modes that cause them). */
  errors: {} as Record<string, number>,
});

export const stats = {
  warmupClients: 0,
  ...counters(),
  handles: {
    /** processHandleCount() after the warm-up, and after the run (each reading). */
    baseline: 0,
    end: [] as number[],
    /** By object type, at the baseline and at the last reading. */
    baselineByType: {} as Record<string, number>,
    endByType: {} as Record<string, number>,
    /** Per type, what differs at the last reading (runtime-owned types left out); [] is a pass. */
    difference: [] as string[],
    notCompared: RUNTIME_OWNED_TYPES,
    /** Handles that were not there at the baseline, at the first reading that differed. */
    newSinceBaseline: [] as string[],
  },
};

export function fail(what: string): void {
  if (failures.length < 100) failures.push(what);
}

export function describe(e: unknown): string {
  if (e instanceof PipeError) return `${e.code} (${e.errno}) from ${e.syscall}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Counts an expected error by where and code. */
export function expected(where: string, e: unknown): void {
  const key = `${where}: ${e instanceof PipeError ? e.code : describe(e)}`;
  stats.errors[key] = (stats.errors[key] ?? 0) + 1;
}

/**
 * `p`, or undefined after `ms`. The timer is cleared either way: a timer left running would keep
 * this process alive after the run, which is exactly what the test checks for.
 */
export function atMost<T>(ms: number, p: Promise<T>): Promise<T | undefined> {
  return within(ms, p).catch(() => undefined);
}

export const peerGone = (e: unknown): boolean => e instanceof PipeError && e.peerGone;

export function mismatch(who: string, m: Mismatch, what = "byte"): string {
  const hex = (b: number) => b < 0 ? "?" : `0x${b.toString(16).padStart(2, "0")}`;
  return `${who}: ${what} ${m.position} is ${hex(m.got)}, expected ${hex(m.expected)}`;
}

/** Connections each server (by pipe name) has accepted so far. */
export const acceptedOn: Map<string, number> = new Map();

/** What is under way now, for the report of a run that does not finish: who → doing what. */
export const active: Map<string, () => string> = new Map();

// ---- meeting points between a client and the server side of its connection ----

export class Meeting<T> {
  #entries = new Map<number, { promise: Promise<T>; resolve(v: T): void }>();
  #arrived = new Set<number>();
  #entry(id: number) {
    let e = this.#entries.get(id);
    if (!e) {
      let resolve!: (v: T) => void;
      const promise = new Promise<T>((r) => (resolve = r));
      e = { promise, resolve };
      this.#entries.set(id, e);
    }
    return e;
  }
  wait(id: number): Promise<T> {
    return this.#entry(id).promise;
  }
  arrived(id: number): boolean {
    return this.#arrived.has(id);
  }
  arrive(id: number, v: T): void {
    this.#arrived.add(id);
    this.#entry(id).resolve(v);
  }
  forget(id: number): void {
    this.#entries.delete(id);
    this.#arrived.delete(id);
  }
}

export interface ServerOutcome {
  header: Header;
  /** Verified bytes after the header. */
  received: number;
  /** The stream ended (EOF) rather than being dropped by the server. */
  eof: boolean;
  dropped: boolean;
  /** A byte differed (already reported): the counts say nothing more. */
  corrupt: boolean;
}

/** The server parsed a client's header. */
export const headerSeen: Meeting<Header> = new Meeting();
/** The server side of a client's connection is done. */
export const serverDone: Meeting<ServerOutcome> = new Meeting();
