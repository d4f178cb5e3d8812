/**
 * Fairness under load, the same on every OS: many connections echo at once through the public
 * API while a 10 ms interval counts its turns. Completions that chain on microtasks without end
 * would hold every timer off until the traffic stops (core/turns.ts).
 */
import { connect, listen } from "../../mod.ts";

export interface Fairness {
  /** How long the transfer took, in ms. */
  ms: number;
  /** How often the 10 ms interval ran meanwhile. */
  ticks: number;
  /** The longest time between two of its turns (or from the start to the first), in ms. */
  longestGap: number;
  /** Bytes echoed back, in all. */
  echoed: number;
}

/** `connections` clients each send `bytes` through an echo server and read them back. */
export async function busyEcho(
  name: string,
  connections: number,
  bytes: number,
): Promise<Fairness> {
  const server = listen(name);
  const served = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of server) {
      handlers.push(conn.readable.pipeTo(conn.writable).catch(() => conn.close()));
    }
    await Promise.all(handlers);
  })();
  const clients = await Promise.all(Array.from({ length: connections }, () => connect(name)));
  const start = performance.now();
  let last = start;
  let ticks = 0;
  let longestGap = 0;
  const interval = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    ticks++;
  }, 10);
  let echoed = 0;
  try {
    await Promise.all(clients.map(async (conn) => {
      const chunk = new Uint8Array(64 * 1024);
      const reading = (async () => {
        const reader = conn.readable.getReader();
        let n = 0;
        for (let r; n < bytes && !(r = await reader.read()).done;) n += r.value.byteLength;
        reader.releaseLock();
        echoed += n;
      })();
      for (let p = 0; p < bytes; p += chunk.byteLength) {
        if (!conn.writer!.write(chunk)) await conn.writer!.flush();
      }
      await reading;
      await conn.close();
    }));
  } finally {
    clearInterval(interval);
  }
  const ms = performance.now() - start;
  longestGap = Math.max(longestGap, performance.now() - last);
  await server.close();
  await served;
  return { ms, ticks, longestGap, echoed };
}
