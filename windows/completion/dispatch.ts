/**
 * The process-wide completion callback: one thread-safe callback shared by every bound pipe. The
 * pool thread hands it the context (which pipe) and the OVERLAPPED's address; it runs on the JS
 * thread, where the pipe finds the operation.
 *
 * @module
 */
import { later, overSlice } from "../../core/turns.ts";
import type { Native, NativeCallback } from "../../ffi/kernel32.ts";

/** Where a completion goes: a bound pipe. */
export interface CompletionTarget {
  completed(overlapped: bigint, ioResult: number, bytes: number): void;
}

/**
 * The callback generation: made when the first pipe is bound, closed when the last one has closed
 * its pool object (after waiting for its callbacks), so that no pool object can ever call a closed
 * callback (Bun crashes if one does). While it lives, the process stays alive, as with an open
 * socket.
 */
let callback: NativeCallback | undefined;
let users = 0;
/** Users that keep the process alive (not unref'ed): the callback is ref'ed while there are any. */
let held = 0;
const targets = new Map<bigint, CompletionTarget>();
let nextContext = 1n;
let strays = 0;

/** Completions that arrived for no operation of a live pipe (a test asserts there are none). */
export function strayCompletions(): number {
  return strays;
}

/** The callback, for one more pipe, and that pipe's context value. */
export function acquireCallback(nat: Native): { callback: NativeCallback; context: bigint } {
  const fresh = callback === undefined;
  callback ??= nat.threadSafeIoCallback((context, overlapped, ioResult, bytes) => {
    // Past the slice, completions wait (in order) for a later turn, so that a stream of them
    // does not hold timers off (core/turns.ts). Returning at once also frees the pool thread.
    if (deferred.length > 0 || overSlice()) {
      if (deferred.push(context, overlapped, ioResult, bytes) === 4) later(drain);
      return;
    }
    deliver(context, overlapped, ioResult, bytes);
  });
  users++;
  if (fresh) held = 1; // made ref'ed
  else hold(1);
  return { callback, context: nextContext++ };
}

/**
 * One user more (1) or fewer (-1) that keeps the process alive. A new callback is ref'ed; it is
 * unref'ed while no user holds it, so that `unref()`ed servers and connections let the process end.
 */
export function hold(delta: 1 | -1): void {
  const before = held;
  held += delta;
  if (!callback) return;
  if (before === 0 && held > 0) callback.ref();
  else if (before > 0 && held === 0) callback.unref();
}

/** Routes completions for `context` to `target` (after the pipe is bound). */
export function route(context: bigint, target: CompletionTarget): void {
  targets.set(context, target);
}

/** Stops routing `context`. */
export function unroute(context: bigint): void {
  targets.delete(context);
}

/** One pipe is done with the callback (`holding`: it was not unref'ed); the last one closes it. */
export function releaseCallback(holding: boolean): void {
  if (--users === 0) held = 0;
  else if (holding) hold(-1);
  if (users === 0 && callback) {
    callback.close();
    callback = undefined;
  }
}

/** Completions put off to a later turn, four entries each: context, overlapped, result, bytes. */
const deferred: (bigint | number)[] = [];

/** Delivers deferred completions, oldest first, for one slice; the rest wait for the next turn. */
function drain(): void {
  let i = 0;
  while (i < deferred.length) {
    deliver(
      deferred[i] as bigint,
      deferred[i + 1] as bigint,
      deferred[i + 2] as number,
      deferred[i + 3] as number,
    );
    i += 4;
    if (overSlice()) break;
  }
  deferred.splice(0, i);
  if (deferred.length > 0) later(drain);
}

/** One completion to its pipe, on the JS thread. */
function deliver(context: bigint, overlapped: bigint, ioResult: number, bytes: number): void {
  // Nothing may be thrown out of a native callback (Deno: "Illegal unhandled exception in
  // nonblocking callback"). Owners turn their own failures into errors; this is the backstop.
  try {
    const target = targets.get(context);
    if (target) target.completed(overlapped, ioResult, bytes);
    else strays++;
  } catch (e) {
    reportLater(e);
  }
}

/** An internal error that no owner caught: raised on a later turn, outside the native callback. */
export function reportLater(e: unknown): void {
  setTimeout(() => {
    throw e;
  }, 0);
}
