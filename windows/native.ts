/**
 * The loaded FFI for the core: the runtime's kernel32, or a {@link PipeError} that names the
 * platform (`ERROR_NOT_SUPPORTED`) where there is none.
 *
 * @module
 */
import { PipeError, Win32 } from "../core/errors.ts";
import type { Native } from "../ffi/kernel32.ts";
import { native } from "../ffi/runtime.ts";

/** The loaded FFI, or a PipeError(ERROR_NOT_SUPPORTED) that names the platform. */
export function requireNative(): Native {
  try {
    return native();
  } catch (cause) {
    throw new PipeError({
      errno: Win32.ERROR_NOT_SUPPORTED,
      syscall: "dlopen",
      detail: (cause as Error).message,
      cause,
    });
  }
}
