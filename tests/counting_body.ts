// A request body for the backpressure tests (natively and under Windows): `total` bytes in 1 MiB
// chunks, made only when the stream is pulled, so that `pulled()` says how far the client got.
const MiB = 1024 * 1024;

export function countingBody(
  total: number,
): { body: ReadableStream<Uint8Array>; pulled(): number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulled >= total) return c.close();
      c.enqueue(new Uint8Array(MiB));
      pulled += MiB;
    },
  }, { highWaterMark: 0 });
  return { body, pulled: () => pulled };
}
