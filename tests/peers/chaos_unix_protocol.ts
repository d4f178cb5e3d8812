// What the Unix-socket chaos run's server and clients agree on (tests/chaos_unix.test.ts): a
// 9-byte header (u32 id, u32 length, u8 echo; little-endian), then `length` bytes of the id's
// pattern. The id STOP ends the run.

export const HEADER = 9;
export const STOP = 0xffff_ffff;

/** The id's bytes, one at a time (xorshift32): the same sequence on both sides. */
export function pattern(id: number): () => number {
  let x = (id * 2654435761 + 1) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x & 0xff;
  };
}

/** The header, then the first `n` bytes of the id's pattern. */
export function message(id: number, length: number, echo: boolean, n = length): Uint8Array {
  const out = new Uint8Array(HEADER + n);
  const view = new DataView(out.buffer);
  view.setUint32(0, id, true);
  view.setUint32(4, length, true);
  view.setUint8(8, echo ? 1 : 0);
  const next = pattern(id);
  for (let i = 0; i < n; i++) out[HEADER + i] = next();
  return out;
}
