/**
 * Fairness with the rest of the program. A read or write that completes at once continues on a
 * microtask, and microtasks run before anything else: with many busy pipes such a chain need
 * never end, and timers, other I/O and pending operations' completions wait behind it. Measured
 * under Wine with 100 echoing connections: no timer ran for 3 to 4 s, in Deno and in Bun; on
 * Linux, 0.4 s. Past {@link SLICE_MS} without a turn of the event loop, continuations wait for
 * one, as libuv bounds the reads it makes per stream in one turn.
 *
 * @module
 */

/** How long continuations may hold the event loop before they give it a turn. */
export const SLICE_MS = 10;

/** When the measured slice began; null once the event loop has had a turn since. */
let sliceStart: number | null = null;
/** A zero-delay timer is armed: when it runs, the event loop has had its turn. */
let marked = false;
/** The slice is over: true until the timer runs. */
let over = false;
/** Calls since the clock was last read. */
let calls = 0;
const endSlice = () => {
  sliceStart = null;
  marked = false;
  over = false;
};

/**
 * True when continuations have held the event loop for more than {@link SLICE_MS}: the caller
 * then goes on with {@link nextTurn} instead of a microtask.
 *
 * A zero-delay timer tells when the loop has had its turn, but it is armed only once a slice is
 * {@link SLICE_MS} old, and the slice is then measured again from that moment: a chain is caught
 * within two slices. A timer every turn cost round trips 4 to 5% under Wine (each one wakes the
 * loop through the wineserver: 1.6 more server requests per exchange, measured with
 * `WINEDEBUG=+server`). The clock is read on every eighth call only: this runs on every
 * operation, and reading it was 1% of a round trip's time (profiled).
 */
export function overSlice(): boolean {
  if (over) return true;
  if (sliceStart !== null && ++calls < 8) return false;
  calls = 0;
  const now = Date.now();
  if (sliceStart === null || now < sliceStart) { // (or the clock was set back)
    sliceStart = now;
    return false;
  }
  if (now - sliceStart <= SLICE_MS) return false;
  if (marked) return (over = true);
  marked = true;
  sliceStart = now;
  setTimeout(endSlice, 0);
  return false;
}

/**
 * Runs `fn` on a later turn of the event loop, after the timers and I/O that are due:
 * `setImmediate`, in Deno, Bun and Node alike. Not `setTimeout(fn, 0)`, which a chain of them
 * stretches to 1 ms (Bun) and 3 ms (Deno) a turn (measured: 200 in a row took 277 ms and 573 ms,
 * against 1 ms and 2 ms), while timers still get their turn between immediates (a 10 ms interval
 * ran 92 to 96 times in 1 s of them).
 */
export function later(fn: () => void): void {
  setImmediate(fn);
}

/** Resolves on a later turn of the event loop (see {@link later}). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => later(resolve));
}
