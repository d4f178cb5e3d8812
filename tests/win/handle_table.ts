/**
 * This process's handles, one by one, with their object types: what a leak check reports when
 * the count is off, so that the report says *what* was left open.
 *
 * It reads the same system handle table as `processHandleCount()` (handles.ts):
 * `NtQuerySystemInformation(SystemExtendedHandleInformation)`. Entries carry a type *index*; its
 * name comes from `NtQueryObject` on one of our handles of that type (bound here, for the tests).
 */
import { bindBun } from "../../ffi/bun.ts";
import { bindDeno } from "../../ffi/deno.ts";
import type { Bindings, NativeSymbol } from "../../ffi/kernel32.ts";
import { native, runtimeName } from "../../ffi/runtime.ts";

const STATUS_INFO_LENGTH_MISMATCH = 0xc0000004;
const SystemExtendedHandleInformation = 64;
// SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX on x64 (40 bytes): PVOID Object; ULONG_PTR UniqueProcessId;
// ULONG_PTR HandleValue; ULONG GrantedAccess; USHORT CreatorBackTraceIndex;
// USHORT ObjectTypeIndex; ULONG HandleAttributes; ULONG Reserved.
const HEADER = 16;
const ENTRY = 40;
const PID = 8;
const VALUE = 16;
const ACCESS = 24;
const TYPE = 30;

let buffer = new Uint8Array(new ArrayBuffer(1 << 20));

export interface HandleEntry {
  handle: number;
  type: number;
  access: number;
}

/** This process's entries in the system handle table, or undefined if the class is missing. */
export function handleTable(): HandleEntry[] | undefined {
  const { kernel32, ntdll } = native();
  const pid = BigInt(kernel32.GetCurrentProcessId());
  for (;;) {
    const returned = new Uint32Array(1);
    const status = ntdll().NtQuerySystemInformation(
      SystemExtendedHandleInformation,
      buffer,
      buffer.byteLength,
      returned,
    ) >>> 0;
    if (status === STATUS_INFO_LENGTH_MISMATCH) {
      buffer = new Uint8Array(new ArrayBuffer(Math.max(buffer.byteLength * 2, returned[0])));
      continue;
    }
    if (status !== 0) return undefined;
    const view = new DataView(buffer.buffer);
    const n = Number(view.getBigUint64(0, true));
    const mine: HandleEntry[] = [];
    for (let i = 0; i < n; i++) {
      const at = HEADER + i * ENTRY;
      if (view.getBigUint64(at + PID, true) !== pid) continue;
      mine.push({
        handle: Number(view.getBigUint64(at + VALUE, true)),
        type: view.getUint16(at + TYPE, true),
        access: view.getUint32(at + ACCESS, true),
      });
    }
    return mine;
  }
}

const objectSymbols = {
  // NTSTATUS NtQueryObject(HANDLE Handle, OBJECT_INFORMATION_CLASS ObjectInformationClass,
  //   PVOID ObjectInformation, ULONG ObjectInformationLength, PULONG ReturnLength)
  NtQueryObject: { parameters: ["usize", "u32", "buffer", "u32", "buffer"], result: "u32" },
} as const satisfies Record<string, NativeSymbol>;
const ObjectTypeInformation = 2;

let objects: Bindings<typeof objectSymbols> | undefined;

/**
 * The type name of one of this process's handles: `NtQueryObject(ObjectTypeInformation)`, whose
 * OBJECT_TYPE_INFORMATION opens with the name as a UNICODE_STRING pointing into the same buffer.
 */
function typeNameOf(handle: number): string | undefined {
  objects ??= runtimeName() === "bun"
    ? bindBun("ntdll.dll", objectSymbols)
    : bindDeno("ntdll.dll", objectSymbols);
  const info = new Uint8Array(new ArrayBuffer(4096));
  const status = objects.NtQueryObject(BigInt(handle), ObjectTypeInformation, info, 4096, null);
  if (status >>> 0 !== 0) return undefined;
  const v = new DataView(info.buffer);
  const bytes = v.getUint16(0, true); // UNICODE_STRING { USHORT Length; USHORT Max; PWSTR Buffer }
  const offset = Number(v.getBigUint64(8, true) - native().addressOf(info));
  if (offset < 16 || offset % 2 || offset + bytes > info.byteLength) return undefined;
  return String.fromCharCode(...new Uint16Array(info.buffer, offset, bytes / 2));
}

const typeNames = new Map<number, string>();

/** The name of a type index, from one of this process's handles of that type. */
function typeName(type: number, table: HandleEntry[]): string {
  let name = typeNames.get(type);
  if (name) return name;
  // A handle may be closed (and its value reused) by another thread meanwhile: try a few.
  for (const e of table.filter((e) => e.type === type).slice(0, 3)) {
    name = typeNameOf(e.handle);
    if (name) {
      typeNames.set(type, name);
      return name;
    }
  }
  return `type #${type}`;
}

/** Names every type in `table` now (NtQueryObject), so that later reports need no lookup. */
export function nameTypes(table: HandleEntry[]): void {
  for (const e of table) typeName(e.type, table);
}

/** A handle as a reader of the report wants it: value, type, access. */
export function describeHandle(e: HandleEntry, table: HandleEntry[]): string {
  return `0x${e.handle.toString(16)} ${typeName(e.type, table)} (access 0x${
    e.access.toString(16)
  })`;
}

/** Handles in `now` that were not in `before` (by value and type). */
export function newHandles(before: HandleEntry[], now: HandleEntry[]): HandleEntry[] {
  const seen = new Set(before.map((e) => `${e.handle}:${e.type}`));
  return now.filter((e) => !seen.has(`${e.handle}:${e.type}`));
}

/** Counts by type name, e.g. { File: 12, Event: 30, Thread: 9 }. */
export function countByType(table: HandleEntry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of table) {
    const name = typeName(e.type, table);
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

/**
 * Thread handles belong to the runtime, which makes and drops them on its own schedule, so a
 * leak check cannot expect their number back (measured under Wine 10): Deno's blocking pool
 * (tokio, where its `nonblocking` FFI calls run) keeps one per live thread, for 10 s after its
 * last task; Bun's count moves by one or two while the process sits idle. winpipe makes no
 * threads (its completions come from the Win32 pool, whose workers' handles are closed).
 */
export const RUNTIME_OWNED_TYPES: readonly string[] = ["Thread"];

/** Per type, what changed from `before` to `after` ("File +1"), leaving out runtime-owned types. */
export function typeDifferences(
  before: Record<string, number>,
  after: Record<string, number>,
): string[] {
  const types = new Set([...Object.keys(before), ...Object.keys(after)]);
  const out: string[] = [];
  for (const t of [...types].sort()) {
    if (RUNTIME_OWNED_TYPES.includes(t)) continue;
    const d = (after[t] ?? 0) - (before[t] ?? 0);
    if (d !== 0) out.push(`${t} ${d > 0 ? "+" : ""}${d}`);
  }
  return out;
}
