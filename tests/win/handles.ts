/**
 * This process's handle count, for leak checks that can fail.
 *
 * `GetProcessHandleCount` is the documented reading, but Wine 10 always reports 0 there, which
 * would make every "count is back to its baseline" assertion compare 0 with 0. So the count is
 * also taken from `NtQuerySystemInformation`: the system handle table, entries whose process id
 * is ours (Wine implements it; on Windows both readings agree). A reading of 0 fails the test.
 */
import { native } from "../../ffi/runtime.ts";

const STATUS_INFO_LENGTH_MISMATCH = 0xc0000004;
// SYSTEM_HANDLE_INFORMATION_EX { ULONG_PTR NumberOfHandles, Reserved;
//   SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX Handles[] }; an entry is 40 bytes on x64:
//   PVOID Object; ULONG_PTR UniqueProcessId; ULONG_PTR HandleValue; ULONG GrantedAccess;
//   USHORT CreatorBackTraceIndex; USHORT ObjectTypeIndex; ULONG HandleAttributes; ULONG Reserved.
const SystemExtendedHandleInformation = 64;
const EX_HEADER = 16;
const EX_ENTRY = 40;
const EX_PID = 8;
// The older SYSTEM_HANDLE_INFORMATION (16-bit process ids): ULONG count, then 24-byte entries.
const SystemHandleInformation = 16;
const HEADER = 8;
const ENTRY = 24;

let buffer = new Uint8Array(new ArrayBuffer(1 << 20));

/** The entries of the system handle table that belong to this process, or undefined. */
export function systemTableHandleCount(): number | undefined {
  const { kernel32, ntdll } = native();
  const pid = kernel32.GetCurrentProcessId();
  for (const cls of [SystemExtendedHandleInformation, SystemHandleInformation]) {
    for (;;) {
      const returned = new Uint32Array(1);
      const status = ntdll().NtQuerySystemInformation(cls, buffer, buffer.byteLength, returned)
        >>> 0;
      if (status === STATUS_INFO_LENGTH_MISMATCH) {
        buffer = new Uint8Array(new ArrayBuffer(Math.max(buffer.byteLength * 2, returned[0])));
        continue;
      }
      if (status !== 0) break; // this class is not implemented: try the next
      const view = new DataView(buffer.buffer);
      let mine = 0;
      if (cls === SystemExtendedHandleInformation) {
        const n = Number(view.getBigUint64(0, true));
        for (let i = 0; i < n; i++) {
          if (view.getBigUint64(EX_HEADER + i * EX_ENTRY + EX_PID, true) === BigInt(pid)) mine++;
        }
      } else {
        const n = view.getUint32(0, true);
        for (let i = 0; i < n; i++) {
          if (view.getUint16(HEADER + i * ENTRY, true) === (pid & 0xffff)) mine++;
        }
      }
      return mine;
    }
  }
  return undefined;
}

/** `GetProcessHandleCount` for this process (0 under Wine 10). */
export function getProcessHandleCount(): number {
  const { kernel32 } = native();
  const count = new Uint32Array(1);
  return kernel32.GetProcessHandleCount(kernel32.GetCurrentProcess(), count) ? count[0] : 0;
}

/**
 * This process's open handles: `GetProcessHandleCount` where it reads non-zero, otherwise the
 * system handle table's count. Throws when both read 0: a leak check must never compare 0 with 0.
 */
export function processHandleCount(): number {
  const documented = getProcessHandleCount();
  if (documented > 0) return documented;
  const counted = systemTableHandleCount() ?? 0;
  if (counted > 0) return counted;
  throw new Error(
    "cannot count this process's handles: GetProcessHandleCount and "
      + "NtQuerySystemInformation(SystemHandleInformation) both read 0",
  );
}
