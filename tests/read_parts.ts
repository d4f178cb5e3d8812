// Shared by the Linux and the Windows suites: reads `total` bytes with read(p), four calls at a
// time of odd sizes, each into its own p, and returns the bytes in the order the calls were made.
import assert from "node:assert/strict";

/** Reads `total` bytes through `read`; `bound` wraps each batch's wait (a time limit). */
export async function readInOddParts(
  read: (p: Uint8Array) => Promise<number | null>,
  total: number,
  bound: <T>(p: Promise<T>) => Promise<T> = (p) => p,
): Promise<Uint8Array> {
  const out = new Uint8Array(total);
  let n = 0;
  while (n < total) {
    // Four calls at once while more than they can take is still to come (a call past the end
    // would wait), then one at a time.
    const sizes = total - n > 70_000 ? [1000, 7, 65_537, 3] : [1000];
    const ps = sizes.map((k) => new Uint8Array(k));
    const counts = await bound(Promise.all(ps.map((p) => read(p))));
    for (const [i, k] of counts.entries()) {
      assert.notEqual(k, null, "the bytes end early");
      out.set(ps[i].subarray(0, k!), n);
      n += k!;
    }
  }
  return out;
}
