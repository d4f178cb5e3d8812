/**
 * Timers for user timeouts and for the bounded waits of cancellation.
 *
 * `setTimeout` takes a signed 32-bit delay: 2^31 ms or more (and `Infinity`) fire at once, in
 * every runtime. A user timeout of `Infinity` means "no timeout"; a longer finite one is chained.
 *
 * @module
 */

/** The largest delay `setTimeout` honours. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * How long `stop()`, a reader's `cancel()` and `PipeServer.close()` wait for a cancelled
 * operation's completion before they give up and report it. The operation's memory stays
 * referenced until the completion does arrive, so nothing is freed under the kernel.
 */
export const CANCEL_WAIT_MS = 2_000;

/** A pending timer that can be cleared. */
export interface Timer {
  clear(): void;
}

/**
 * Calls `fn` after `ms` milliseconds, for any `ms >= 0`: `Infinity` never fires, and delays past
 * 2^31 − 1 ms are chained rather than firing at once.
 */
export function longTimeout(fn: () => void, ms: number): Timer {
  let handle: ReturnType<typeof setTimeout> | undefined;
  if (ms !== Infinity) {
    const due = Date.now() + ms;
    const arm = () => {
      const left = due - Date.now();
      handle = left > MAX_DELAY ? setTimeout(arm, MAX_DELAY) : setTimeout(fn, Math.max(0, left));
    };
    arm();
  }
  return { clear: () => clearTimeout(handle) };
}

/**
 * True if `p` settles (either way) within `ms`; false otherwise. `p` goes on regardless. The
 * verdict waits one more turn of the event loop once `ms` has passed: an event loop that was held
 * up (a busy process, a loaded machine) runs an overdue timer in the same turn as the completion
 * that was due before it, and that completion must win.
 */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let late: ReturnType<typeof setTimeout> | undefined;
    const timer = longTimeout(() => {
      late = setTimeout(() => resolve(false), 0);
    }, ms);
    const done = () => {
      timer.clear();
      clearTimeout(late);
      resolve(true);
    };
    p.then(done, done);
  });
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Connecting while a server starts or is busy, on every OS: `attempt` until it returns; when it
 * throws, `retryable` decides whether to try again after a pause (1 ms, doubling to 25 ms, so
 * the JS thread is never blocked, as `WaitNamedPipeW` would) until `timeout` ms have passed or
 * `signal` aborts. What is thrown is `giveUp(error, timedOut)`.
 */
export async function retrying<T>(
  attempt: () => T | Promise<T>,
  { timeout, signal }: { timeout: number; signal: AbortSignal | undefined },
  retryable: (e: unknown) => boolean,
  giveUp: (e: unknown, timedOut: boolean) => unknown,
): Promise<T> {
  const deadline = performance.now() + timeout;
  let delay = 1;
  for (;;) {
    signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (e) {
      const retry = retryable(e);
      const left = deadline - performance.now();
      if (!retry || left <= 0) throw giveUp(e, retry);
      await sleep(Math.min(delay, left), signal);
      delay = Math.min(delay * 2, 25);
    }
  }
}
