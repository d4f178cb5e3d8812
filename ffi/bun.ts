/**
 * The Bun adapter: binds a symbol table with `bun:ffi`'s `dlopen` and makes thread-safe callbacks
 * with `JSCallback({ threadsafe: true })`. `bun:ffi` is loaded only inside the Bun branch, and its
 * types are declared locally (only what is used) so that this file type-checks under Deno too.
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
  type NativeType,
  type Ntdll,
  ntdllSymbols,
} from "./kernel32.ts";

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  ptr(view: ArrayBufferView): number;
  toArrayBuffer(address: number, byteOffset: number, byteLength: number): ArrayBuffer;
  JSCallback: new(
    fn: (...args: unknown[]) => void,
    def: { args: string[]; returns: string; threadsafe: boolean },
  ) => { ptr: number | null; close(): void };
}

// `u64` makes Bun take and return bigint, which is the neutral face of a pointer-sized value.
const bunType: Record<NativeType, string> = {
  u8: "u8",
  u32: "u32",
  i32: "i32",
  usize: "u64",
  buffer: "ptr",
  void: "void",
};

function bunDefs(symbols: Record<string, NativeSymbol>) {
  const defs: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, def] of Object.entries(symbols)) {
    defs[name] = { args: def.parameters.map((t) => bunType[t]), returns: bunType[def.result] };
  }
  return defs;
}

let ffi: BunFfi | undefined;
function bunFfi(): BunFfi {
  // Synchronous, so that PipeWriter.fromHandle can be synchronous; only reached under Bun.
  ffi ??= (import.meta as unknown as { require(id: string): BunFfi }).require("bun:ffi");
  return ffi;
}

/** Binds `symbols` from `library`. */
export function bindBun<S extends Record<string, NativeSymbol>>(
  library: string,
  symbols: S,
): Bindings<S> {
  const lib = bunFfi().dlopen(library, bunDefs(symbols));
  // A plain object, as in Deno: the same face in both runtimes (tests wrap entries in it).
  const bound = Object.fromEntries(Object.keys(symbols).map((name) => [name, lib.symbols[name]]));
  return bound as unknown as Bindings<S>;
}

/** The Bun implementation of {@link Native}. */
export function loadBun(): Native {
  const { ptr, toArrayBuffer, JSCallback } = bunFfi();
  const kernel32: Kernel32 = bindBun("kernel32.dll", kernel32Symbols);
  let advapi32: Advapi32 | undefined;
  let ntdll: Ntdll | undefined;
  return {
    runtime: "bun",
    kernel32,
    advapi32: () => (advapi32 ??= bindBun("advapi32.dll", advapi32Symbols)),
    ntdll: () => (ntdll ??= bindBun("ntdll.dll", ntdllSymbols)),
    addressOf: (view) => BigInt(ptr(view)),
    waitForThreadpoolIoCallbacks: async (io) => {
      // On a fresh macrotask, so never from inside a completion callback.
      await new Promise((r) => setTimeout(r, 0));
      kernel32.WaitForThreadpoolIoCallbacks(io, 0);
    },
    copyFrom(address, dst) {
      dst.set(new Uint8Array(toArrayBuffer(Number(address), 0, dst.byteLength)));
    },
    threadSafeIoCallback(onCompletion: IoCompletion): NativeCallback {
      const def = bunDefs({ cb: ioCompletionCallback }).cb;
      const cb = new JSCallback(
        (_instance, context, overlapped, ioResult, bytes) =>
          onCompletion(
            BigInt(context as bigint),
            BigInt(overlapped as bigint),
            Number(ioResult),
            Number(bytes),
          ),
        { ...def, threadsafe: true },
      );
      if (cb.ptr === null) throw new Error("bun:ffi JSCallback has no pointer");
      // A threadsafe JSCallback keeps nothing alive: a timer holds the process while it lives.
      const keepAlive = setInterval(() => {}, 1 << 30);
      return {
        address: BigInt(cb.ptr),
        owe() {},
        paid() {},
        close() {
          clearInterval(keepAlive);
          cb.close();
        },
        unref: () => keepAlive.unref(),
        ref: () => keepAlive.ref(),
      };
    },
  };
}
