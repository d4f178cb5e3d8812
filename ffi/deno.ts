/**
 * The Deno adapter: binds a symbol table with `Deno.dlopen` and makes thread-safe callbacks with
 * `Deno.UnsafeCallback.threadSafe`. Deno's types are declared locally (only what is used), so that
 * this file type-checks under Bun and tsc as well and no Deno type leaks into the public API.
 *
 * @module
 */
import {
  type Advapi32,
  advapi32Symbols,
  type Bindings,
  type IoCompletion,
  ioCompletionCallback,
  type Kernel32,
  kernel32Symbols,
  type Native,
  type NativeCallback,
  type NativeSymbol,
  type Ntdll,
  ntdllSymbols,
} from "./kernel32.ts";

type PointerObject = object;
interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, NativeSymbol & { nonblocking?: boolean }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  UnsafePointer: {
    of(view: ArrayBufferView): PointerObject | null;
    value(p: PointerObject | null): bigint | number;
    create(v: bigint): PointerObject | null;
  };
  UnsafePointerView: new(p: PointerObject) => {
    copyInto(dst: Uint8Array, offset?: number): void;
  };
  UnsafeCallback: {
    threadSafe(
      def: NativeSymbol,
      fn: (...args: unknown[]) => void,
    ): { pointer: PointerObject; ref(): number; unref(): number; close(): void };
  };
  unrefTimer(id: number): void;
  refTimer(id: number): void;
}

/** How often the event loop is woken while a completion is owed (see threadSafeIoCallback). */
const WATCHDOG_MS = 5;
/** ...and once nothing has completed for WATCHDOG_IDLE_AFTER_MS. */
const WATCHDOG_IDLE_MS = 50;
const WATCHDOG_IDLE_AFTER_MS = 100;

const D = (globalThis as unknown as { Deno: DenoFfi }).Deno;
/** Each `ArrayBuffer`'s address, once asked for (see `addressOf`). */
const bases = new WeakMap<ArrayBufferLike, bigint>();

/** Binds `symbols` from `library`, normalising pointer-sized results to `bigint`. */
export function bindDeno<S extends Record<string, NativeSymbol>>(
  library: string,
  symbols: S,
): Bindings<S> {
  const lib = D.dlopen(library, symbols);
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(symbols)) {
    const fn = lib.symbols[name];
    // Deno returns a 64-bit integer as a number when it fits; the neutral face says bigint.
    out[name] = def.result === "usize" ? (...a: unknown[]) => BigInt(fn(...a) as number) : fn;
  }
  return out as Bindings<S>;
}

/** The Deno implementation of {@link Native}. */
export function loadDeno(): Native {
  const kernel32: Kernel32 = bindDeno("kernel32.dll", kernel32Symbols);
  // A second binding whose one symbol runs on Deno's blocking pool and returns a promise.
  const waiter = D.dlopen("kernel32.dll", {
    WaitForThreadpoolIoCallbacks: {
      ...kernel32Symbols.WaitForThreadpoolIoCallbacks,
      nonblocking: true,
    },
  });
  let advapi32: Advapi32 | undefined;
  let ntdll: Ntdll | undefined;
  return {
    runtime: "deno",
    kernel32,
    advapi32: () => (advapi32 ??= bindDeno("advapi32.dll", advapi32Symbols)),
    ntdll: () => (ntdll ??= bindDeno("ntdll.dll", ntdllSymbols)),
    addressOf(view) {
      // Each buffer's address once: the writer's blocks and the reader's buffer are used again
      // and again, and `UnsafePointer.of` is a call into the runtime (5% of a round trip's JS
      // time, profiled). An `ArrayBuffer`'s memory never moves (taking `.buffer` moves a small
      // typed array's data off the V8 heap for good, before the address is read); a detached or
      // shrunk buffer's views are empty, and an empty view's address is never asked for.
      const buffer = view.buffer;
      const base = bases.get(buffer);
      if (base !== undefined) return base + BigInt(view.byteOffset);
      const address = BigInt(D.UnsafePointer.value(D.UnsafePointer.of(view)));
      if (address !== 0n) bases.set(buffer, address - BigInt(view.byteOffset));
      return address;
    },
    waitForThreadpoolIoCallbacks: async (io) => {
      await waiter.symbols.WaitForThreadpoolIoCallbacks(io, 0);
    },
    copyFrom(address, dst) {
      const p = D.UnsafePointer.create(address);
      if (p === null) throw new TypeError("copyFrom: null address");
      new D.UnsafePointerView(p).copyInto(dst);
    },
    threadSafeIoCallback(onCompletion: IoCompletion): NativeCallback {
      // A foreign-thread call blocks that pool thread until JS has run the callback, so the JS
      // thread never waits synchronously for pool callbacks (see docs/design.md).
      const cb = D.UnsafeCallback.threadSafe(
        ioCompletionCallback,
        (_instance, context, overlapped, ioResult, bytes) =>
          onCompletion(
            BigInt(context as number),
            BigInt(overlapped as number),
            ioResult as number,
            Number(bytes),
          ),
      );
      // threadSafe() refs the callback once; it stays ref'ed until close(). While completions
      // are owed, a watchdog also wakes the event loop every WATCHDOG_MS: measured here, a pool
      // thread's call into JS occasionally fails to wake Deno's event loop, and then waits for an
      // unrelated wake-up (~30 s under `deno test`, one stall in a few thousand). It is one
      // interval timer, made when something is first owed and cleared after WATCHDOG_IDLE_AFTER_MS
      // with nothing owed; an operation never touches it (a timer set and cleared per operation,
      // then re-armed per tick, was a sixth of a round trip's JS time, profiled: Deno's timers
      // are costly to make).
      let owed = 0;
      let completions = 0;
      let seen = 0; // completions at the last tick
      let quietMs = 0; // since the last completion, or since nothing was owed, as ticks count it
      let period = WATCHDOG_MS;
      let watchdog: number | undefined;
      let kept = true; // unref() makes both the callback and the watchdog let the process end
      const start = (ms: number) => {
        period = ms;
        watchdog = setInterval(tick, ms) as unknown as number;
        if (!kept) D.unrefTimer(watchdog);
      };
      const stop = () => {
        clearInterval(watchdog);
        watchdog = undefined;
      };
      const restart = (ms: number) => {
        if (period === ms) return;
        stop();
        start(ms);
      };
      const tick = () => {
        if (completions !== seen) {
          seen = completions;
          quietMs = 0;
          // Busy again after a quiet spell: wake often.
          restart(WATCHDOG_MS);
          return;
        }
        quietMs += period;
        if (quietMs < WATCHDOG_IDLE_AFTER_MS) return;
        if (owed === 0) stop(); // the next owe() makes it again
        // A read waiting for a peer: back off.
        else restart(WATCHDOG_IDLE_MS);
      };
      return {
        address: BigInt(D.UnsafePointer.value(cb.pointer)),
        owe() {
          if (owed++ === 0 && watchdog === undefined) {
            seen = completions;
            quietMs = 0;
            start(WATCHDOG_MS);
          }
        },
        paid() {
          completions++;
          owed--;
        },
        close() {
          stop();
          cb.close();
        },
        unref() {
          kept = false;
          cb.unref();
          if (watchdog !== undefined) D.unrefTimer(watchdog);
        },
        ref() {
          kept = true;
          cb.ref();
          if (watchdog !== undefined) D.refTimer(watchdog);
        },
      };
    },
  };
}
