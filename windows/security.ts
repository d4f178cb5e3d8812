/**
 * Explicit `SECURITY_ATTRIBUTES` for every handle winpipe creates: never inheritable, and with an
 * explicit security descriptor where one is given.
 *
 * @module
 */
import { SECURITY_ATTRIBUTES_SIZE } from "../ffi/kernel32.ts";

/**
 * A `SECURITY_ATTRIBUTES` { nLength, lpSecurityDescriptor, bInheritHandle = FALSE }. The memory
 * only has to live for the call it is passed to.
 */
export function securityAttributes(securityDescriptor: bigint = 0n): Uint8Array {
  const bytes = new Uint8Array(new ArrayBuffer(SECURITY_ATTRIBUTES_SIZE));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SECURITY_ATTRIBUTES_SIZE, true); // nLength
  view.setBigUint64(8, securityDescriptor, true); // lpSecurityDescriptor
  view.setInt32(16, 0, true); // bInheritHandle = FALSE
  return bytes;
}
