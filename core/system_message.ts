/**
 * The system's text for a Win32 code: `FormatMessageW` on Windows (its buffer `LocalFree`'d),
 * and the same English texts from a small table elsewhere, so that errors read alike in the
 * Linux suites.
 *
 * @module
 */
import {
  FORMAT_MESSAGE_ALLOCATE_BUFFER,
  FORMAT_MESSAGE_FROM_SYSTEM,
  FORMAT_MESSAGE_IGNORE_INSERTS,
} from "../ffi/kernel32.ts";
import { isWindows, native } from "../ffi/runtime.ts";

const fallback: Record<number, string> = {
  0: "The operation completed successfully.",
  2: "The system cannot find the file specified.",
  5: "Access is denied.",
  6: "The handle is invalid.",
  50: "The request is not supported.",
  87: "The parameter is incorrect.",
  109: "The pipe has been ended.",
  121: "The semaphore timeout period has expired.",
  231: "All pipe instances are busy.",
  232: "The pipe is being closed.",
  233: "No process is on the other end of the pipe.",
  234: "More data is available.",
  995:
    "The I/O operation has been aborted because of either a thread exit or an application request.",
  1168: "Element not found.",
  1287: "Insufficient information exists to identify the cause of failure.",
  1460: "This operation returned because the timeout period expired.",
};

const cache = new Map<number, string>();

/** The system text for `code`, trimmed; never throws. */
export function systemMessage(code: number): string {
  let text = cache.get(code);
  if (text === undefined) {
    text = (isWindows() ? formatMessage(code) : undefined) ?? fallback[code]
      ?? `Unknown error ${code}.`;
    cache.set(code, text);
  }
  return text;
}

function formatMessage(code: number): string | undefined {
  try {
    const { kernel32, copyFrom } = native();
    // With ALLOCATE_BUFFER, lpBuffer receives a pointer to a LocalAlloc'd string we must free.
    const out = new BigUint64Array(1);
    const chars = kernel32.FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      0n,
      code,
      0,
      out,
      0,
      0n,
    );
    const address = out[0];
    if (chars === 0 || address === 0n) return undefined;
    try {
      const bytes = new Uint8Array(chars * 2);
      copyFrom(address, bytes);
      return new TextDecoder("utf-16le").decode(bytes).trim();
    } finally {
      kernel32.LocalFree(address);
    }
  } catch {
    return undefined;
  }
}
