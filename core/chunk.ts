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
