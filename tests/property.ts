// What the property and contract suites share: their seeds, and a bound on every promise.
import process from "node:process";

/**
 * The seeds a property runs with: `fixed`, and WINPIPE_SEED when it is set (npm test sets a fresh
 * one per run and prints it): `WINPIPE_SEED=<n> npm test` reproduces a failure.
 */
export function seeds(fixed: number): { label: string; seed: number }[] {
  const out = [{ label: `fixed seed ${fixed}`, seed: fixed }];
  const env = process.env.WINPIPE_SEED;
  if (env !== undefined && env !== "") {
    out.push({ label: `WINPIPE_SEED=${env}`, seed: Number(env) });
  }
  return out;
}

/** `p`, or a failure naming `what` if it is still pending after `ms`: nothing pends for ever. */
export function settles<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
    }),
  ]);
}
