/**
 * What the completion-path benches (bench/completion_path_bench.ts for Deno,
 * bench/completion_path_bun.ts for Bun) share: a connected pipe whose server drains it, and
 * winpipe's path timed over a run of awaited writes.
 */
import { openSettings } from "../core/options.ts";
import { ServerEnd, uniqueName } from "../tests/win/server_end.ts";
import { OverlappedPipe } from "../windows/completion/mod.ts";
import { openPipeHandle } from "../windows/open.ts";

/** 1000 sequential 4 KiB writes, each awaited before the next. */
export const WRITES = 1000;
export const SIZE = 4096;

/** A server instance with `inBufferSize` bytes of buffer, draining; a client handle to it. */
export async function connected(inBufferSize: number) {
  const name = uniqueName("cp");
  const server = ServerEnd.create(name, { inBufferSize }, 1 << 20);
  const c = server.connect();
  const handle = await openPipeHandle(name, "write", openSettings({}, "bench"));
  await c;
  return { server, handle, reading: server.drain() };
}

/** winpipe's path (completing at once unless `inline` is false): the writes' time in ms. */
export async function overlappedPipe(inBufferSize: number, inline: boolean): Promise<number> {
  const { server, handle, reading } = await connected(inBufferSize);
  const pipe = OverlappedPipe.bind(handle, { owned: true, inline });
  const channel = pipe.writeChannel();
  const data = new Uint8Array(new ArrayBuffer(SIZE));
  const t0 = performance.now();
  for (let i = 0; i < WRITES; i++) {
    let completion: ((r: { error: number }) => void) | undefined;
    const r = channel.startWrite(data, (r) => completion!(r));
    if (r) {
      if (r.error) throw new Error(`WriteFile: ${r.error}`);
      continue; // completed at once
    }
    const { error } = await new Promise<{ error: number }>((resolve) => (completion = resolve));
    if (error) throw new Error(`WriteFile: ${error}`);
  }
  const ms = performance.now() - t0;
  await channel.release();
  await reading;
  await server.close();
  return ms;
}
