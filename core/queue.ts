/**
 * The write queue: chunks copied into writer-owned blocks (each over a `new ArrayBuffer`, whose
 * memory never moves), small chunks coalesced into one block so that one `WriteFile` carries many
 * of them. Never hands the kernel a view the user owns.
 *
 * @module
 */

/** The smallest block; small writes coalesce into it. */
export const MIN_BLOCK = 16 * 1024;
/**
 * The largest block, and so the largest single `WriteFile`. Measured (bench/RESULTS.md, group
 * "largest write"): 64 KiB is clearly slower, 256 KiB to 4 MiB are alike; 1 MiB keeps syscalls
 * few. It also keeps every write far below the 4 GiB − 1 a DWORD `nNumberOfBytesToWrite` allows.
 */
export const MAX_BLOCK = 1024 * 1024;

/** A block: its memory, and how much of it is filled. */
interface Block {
  bytes: Uint8Array;
  filled: number;
  /** A message: nothing may be appended to it. */
  sealed?: boolean;
}

/** A FIFO of bytes in writer-owned blocks. */
export class WriteQueue {
  #blocks: Block[] = [];
  /** Written blocks kept for reuse, by size (each a power of two), within {@link #spareBytes}. */
  #spare = new Map<number, Uint8Array[]>();
  #spareBytes = 0;
  #queuedBytes = 0;
  readonly #maxBlock: number;

  readonly #messages: boolean;

  /** With `messages`, every push is its own block: never merged with another, never split. */
  constructor(maxBlock: number = MAX_BLOCK, messages = false) {
    this.#maxBlock = maxBlock;
    this.#messages = messages;
  }

  /** Bytes queued and not yet taken. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Copies `data` to the tail, filling the last block first. */
  push(data: Uint8Array): void {
    if (this.#messages) {
      const bytes = new Uint8Array(new ArrayBuffer(data.byteLength));
      bytes.set(data);
      this.#blocks.push({ bytes, filled: data.byteLength, sealed: true });
      this.#queuedBytes += data.byteLength;
      return;
    }
    let offset = 0;
    while (offset < data.byteLength) {
      let tail = this.#blocks[this.#blocks.length - 1];
      if (!tail || tail.sealed || tail.filled === tail.bytes.byteLength) {
        // Grow while writes pile up behind the one in flight, so coalesced writes get large.
        const grow = tail ? tail.bytes.byteLength * 2 : 0;
        tail = { bytes: this.#allocate(Math.max(data.byteLength - offset, grow)), filled: 0 };
        this.#blocks.push(tail);
      }
      const n = Math.min(tail.bytes.byteLength - tail.filled, data.byteLength - offset);
      tail.bytes.set(data.subarray(offset, offset + n), tail.filled);
      tail.filled += n;
      offset += n;
    }
    this.#queuedBytes += data.byteLength;
  }

  /** Removes and returns the first block's bytes (everything coalesced into it), or null. */
  take(): Uint8Array | null {
    const head = this.#blocks.shift();
    if (!head) return null;
    this.#queuedBytes -= head.filled;
    return head.bytes.subarray(0, head.filled);
  }

  /**
   * Gives a taken block back for reuse, once the kernel is done with it. Blocks of every size are
   * kept, up to two largest blocks' worth in all: a fresh `ArrayBuffer` per write (zeroed, its
   * pages new to the process) costs more than the write's copy (measured: 64 KiB chunks written
   * at 141 MB/s with only 1 MiB blocks reused, 252 MB/s with all; docs/design.md).
   */
  recycle(bytes: Uint8Array): void {
    const size = bytes.buffer.byteLength;
    if (this.#messages) return; // exact-size blocks: never asked for again
    if (this.#spareBytes + size > 2 * this.#maxBlock) return;
    const list = this.#spare.get(size);
    if (list) list.push(new Uint8Array(bytes.buffer));
    else this.#spare.set(size, [new Uint8Array(bytes.buffer)]);
    this.#spareBytes += size;
  }

  /** Drops everything queued. */
  clear(): void {
    this.#blocks = [];
    this.#queuedBytes = 0;
  }

  #allocate(want: number): Uint8Array {
    let size = MIN_BLOCK;
    while (size < want && size < this.#maxBlock) size *= 2;
    size = Math.min(size, this.#maxBlock);
    const spare = this.#spare.get(size)?.pop();
    if (spare) {
      this.#spareBytes -= size;
      return spare;
    }
    return new Uint8Array(new ArrayBuffer(size));
  }
}
