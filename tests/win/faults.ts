/**
 * Fault injection for the Windows suites: a kernel32 entry is replaced for the length of a test,
 * so that failures Windows rarely gives (a failing CancelIoEx, a GetLastError of 0) can be made
 * on demand. winpipe holds the bound table itself, so a replaced entry is what it calls.
 */
import type { Kernel32 } from "../../ffi/kernel32.ts";
import { native } from "../../ffi/runtime.ts";

type Entry = (...args: never[]) => unknown;
type Table = Record<string, Entry>;

/** Replaces `kernel32[name]` with `make(real)`; returns the function that puts it back. */
export function inject<N extends keyof Kernel32>(
  name: N,
  make: (real: Kernel32[N]) => Kernel32[N],
): () => void {
  const table = native().kernel32 as unknown as Table;
  const real = table[name];
  table[name] = make(real as unknown as Kernel32[N]) as unknown as Entry;
  return () => {
    table[name] = real;
  };
}

/** Makes the next `GetLastError` call read `code`, once (the call after it reads the truth). */
export function nextLastError(code: number): void {
  const restore = inject("GetLastError", () => () => {
    restore();
    return code;
  });
}

/** An entry that fails: returns FALSE (0), and `GetLastError` then reads `code`. */
export function failingWith(code: number): () => number {
  return () => {
    nextLastError(code);
    return 0;
  };
}

/** Counts the calls that go through a kernel32 entry, and lets them through. */
export function countCalls<N extends keyof Kernel32>(name: N): { calls: number; restore(): void } {
  const counter = {
    calls: 0,
    restore: () => {},
  };
  counter.restore = inject(name, (real) =>
    ((...args: unknown[]) => {
      counter.calls++;
      return (real as unknown as (...a: unknown[]) => unknown)(...args);
    }) as unknown as Kernel32[N]);
  return counter;
}
