/**
 * What the chaos run's clients and its server agree on: the header every client sends first, the
 * byte stream a seed stands for, and the seeded generator behind every random choice.
 *
 * A client's bytes are its stream from position 0; the server rebuilds the stream from the seed
 * in the header and checks every byte it receives against it, so a lost, repeated, reordered or
 * foreign byte shows at its position.
 */

/** What a client does; the server reads it from the header. */
export const MODES = [
  "graceful", // write N chunks, then close(): the declared total must arrive, then EOF
  "stop", // write, then writer.stop() mid-stream: a prefix, then EOF
  "echo", // write a declared total and read it all back, verified; then close()
  "echoCancel", // echo, then reader.cancel() with a read in flight, writer.stop(), close()
  "flash", // connect and close at once: nothing arrives (no header)
  "serverDrop", // write until the server closes its end after `cut` bytes: the client's peerGone
  "die", // a separate process writing forever, killed by its pid: a prefix, then EOF
] as const;
export type Mode = typeof MODES[number];

export const HEADER_SIZE = 32;
const MAGIC = 0x4843_5057; // "WPCH"

export interface Header {
  clientId: number;
  /** The seed of the client's byte stream. */
  seed: number;
  mode: Mode;
  /** Bytes that follow the header, when the client declares them; null: unknown. */
  total: number | null;
  /** serverDrop: the server closes its end once it has this many bytes. */
  cut: number;
  /**
   * Random bits that vary either side: the server reads with a BYOB reader (bit 0), drops with a
   * read in flight (bit 1); the client's own choices use the others. DIE_ECHO is meaningful.
   */
  variant: number;
}

/** In a dying client's header: the server echoes its bytes back, and it reads and checks them. */
export const DIE_ECHO = 0x80;

// 0 magic u32 | 4 clientId u32 | 8 seed u32 | 12 mode u8 | 13 variant u8 | 16 total f64 (-1)
// | 24 cut u32 | 28 reserved u32, little-endian.
export function encodeHeader(h: Header): Uint8Array {
  const bytes = new Uint8Array(HEADER_SIZE);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, h.clientId, true);
  v.setUint32(8, h.seed, true);
  v.setUint8(12, MODES.indexOf(h.mode));
  v.setUint8(13, h.variant & 0xff);
  v.setFloat64(16, h.total ?? -1, true);
  v.setUint32(24, h.cut, true);
  return bytes;
}

/** The header in the first HEADER_SIZE bytes; throws on anything that is not one. */
export function decodeHeader(bytes: Uint8Array): Header {
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const magic = v.getUint32(0, true);
  if (magic !== MAGIC) {
    throw new Error(`not a chaos header: magic 0x${magic.toString(16)} (bytes ${hex(bytes, 16)})`);
  }
  const mode = MODES[v.getUint8(12)];
  if (!mode) throw new Error(`not a chaos header: mode ${v.getUint8(12)}`);
  const total = v.getFloat64(16, true);
  return {
    clientId: v.getUint32(4, true),
    seed: v.getUint32(8, true),
    mode,
    variant: v.getUint8(13),
    total: total < 0 ? null : total,
    cut: v.getUint32(24, true),
  };
}

function hex(bytes: Uint8Array, n: number): string {
  return [...bytes.subarray(0, n)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Two 32-bit numbers hashed into one (murmur3's finaliser): a seed per client, per purpose. */
export function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b >>> 0, 0x9e37_79b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A seeded generator for decisions (mulberry32). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uint32. */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b_79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** In [0, 1). */
  float(): number {
    return this.next() / 2 ** 32;
  }
  /** A whole number in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
  /** A size in [1, max], log-uniform: as many tiny writes as large ones. */
  size(max: number): number {
    return Math.min(max, Math.max(1, Math.floor(Math.exp(this.float() * Math.log(max + 1)))));
  }
}

/** Where a received byte differs from the stream. */
export interface Mismatch {
  position: number;
  got: number;
  expected: number;
}

/**
 * The byte stream of a seed: byte p is byte p % 4 (little-endian) of the (p >> 2)th word of a
 * xorshift32 sequence. Read sequentially, by the writer (`next`) and by the checker (`check`).
 */
export class ByteStream {
  #x: number;
  #word = 0;
  #position = 0;
  #broken = false;

  constructor(seed: number) {
    this.#x = (seed | 0) || 0x6b43_a9b5; // xorshift's state must not be 0
  }

  /** Bytes produced or checked so far. */
  get position(): number {
    return this.#position;
  }

  /** The next `n` bytes, into `out` when given (it must hold them). */
  next(n: number, out: Uint8Array = new Uint8Array(n)): Uint8Array {
    let x = this.#x, word = this.#word, p = this.#position;
    for (let i = 0; i < n; i++, p++) {
      if ((p & 3) === 0) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        word = x;
      }
      out[i] = (word >>> ((p & 3) << 3)) & 0xff;
    }
    this.#x = x;
    this.#word = word;
    this.#position = p;
    return out.subarray(0, n);
  }

  /**
   * Checks that `bytes` are the stream's next bytes; null if so. At the first wrong byte it
   * returns where, and the stream stops checking (every later call reports that same place).
   */
  check(bytes: Uint8Array): Mismatch | null {
    if (this.#broken) return { position: this.#position, got: -1, expected: -1 };
    let x = this.#x, word = this.#word, p = this.#position;
    for (let i = 0; i < bytes.length; i++, p++) {
      if ((p & 3) === 0) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        word = x;
      }
      const expected = (word >>> ((p & 3) << 3)) & 0xff;
      if (bytes[i] !== expected) {
        this.#broken = true;
        this.#position = p;
        return { position: p, got: bytes[i], expected };
      }
    }
    this.#x = x;
    this.#word = word;
    this.#position = p;
    return null;
  }
}
