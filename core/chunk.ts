/**
 * What `write()` accepts, as bytes: a `Uint8Array`, any other `ArrayBufferView`, an
 * `ArrayBuffer`, or a string (UTF-8). Anything else, and a detached buffer, is a `TypeError`.
 *
 * @module
 */
import { describe } from "./names.ts";

/** What {@link PipeWriter.write} accepts. */
export type Chunk = ArrayBufferView | ArrayBuffer | string;

const encoder = new TextEncoder();

function isDetached(buffer: ArrayBufferLike): boolean {
  // `detached` is ES2024; fall back to the zero-length symptom on older engines.
  const d = (buffer as { detached?: boolean }).detached;
  if (typeof d === "boolean") return d;
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * A view of the chunk's bytes (not a copy: the caller copies). Throws a `TypeError` for anything
 * that is not bytes, and for a detached buffer.
 */
export function chunkBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) {
    if (isDetached(chunk)) throw new TypeError("write(): the ArrayBuffer is detached");
    return new Uint8Array(chunk);
  }
  if (ArrayBuffer.isView(chunk)) {
    if (isDetached(chunk.buffer)) throw new TypeError("write(): the chunk's buffer is detached");
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  if (typeof SharedArrayBuffer !== "undefined" && chunk instanceof SharedArrayBuffer) {
    return new Uint8Array(chunk);
  }
  throw new TypeError(
    `write() takes a Uint8Array, an ArrayBufferView, an ArrayBuffer or a string; got ${
      describe(chunk)
    }`,
  );
}

/**
 * How many bytes `write(chunk)` would queue, without copying or encoding: a string's UTF-8
 * length (a lone surrogate counts as U+FFFD's three bytes, as `TextEncoder` writes it), a view's
 * or a buffer's byte length, and 0 for anything else (which `write()` then refuses).
 */
export function chunkSize(chunk: unknown): number {
  if (typeof chunk === "string") {
    let n = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c < 0xdc00 && i + 1 < chunk.length) {
        const d = chunk.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          n += 4; // a surrogate pair: one code point past U+FFFF
          i++;
        } else n += 3;
      } else n += 3;
    }
    return n;
  }
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  if (chunk instanceof ArrayBuffer) return chunk.byteLength;
  if (typeof SharedArrayBuffer !== "undefined" && chunk instanceof SharedArrayBuffer) {
    return chunk.byteLength;
  }
  return 0;
}
