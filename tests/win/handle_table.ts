/**
 * This process's handles, one by one, with their object types: what a leak check reports when
 * the count is off, so that the report says *what* was left open.
 *
 * It reads the same system handle table as `processHandleCount()` (handles.ts):
 * `NtQuerySystemInformation(SystemExtendedHandleInformation)`. Entries carry a type *index*, not a
 * name, and ntdll's `NtQueryObject` is not bound here, so names come from probes: objects of
 * known types are made once, and their indexes looked up.
 */
import process from "node:process";
import { toWide } from "../../core/names.ts";
import { PIPE_ACCESS_INBOUND, PIPE_TYPE_BYTE } from "../../ffi/kernel32.ts";
import { native } from "../../ffi/runtime.ts";

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

let typeNames: Map<number, string> | undefined;

// Wine's server numbers object types by their place in server/object.c's types[] (Wine 10; the
// probes below agree: Token 3, Event 8, File 17).
const WINE_TYPES = [
  "Type",
  "Directory",
  "SymbolicLink",
  "Token",
  "Job",
  "Process",
  "Thread",
  "DebugObject",
  "Event",
  "Mutant",
  "Semaphore",
  "Timer",
  "KeyedEvent",
  "WindowStation",
  "Desktop",
  "Device",
  "IoCompletion",
  "File",
  "Section",
  "Key",
];

/**
 * Type index → name: under Wine from its fixed numbering, checked against probes; elsewhere from
 * the probes alone (Event, File for a pipe, Token).
 */
export function knownTypes(): Map<number, string> {
  if (typeNames) return typeNames;
  const { kernel32, advapi32 } = native();
  const names = new Map<number, string>();
  const made: [string, bigint][] = [];
  const event = kernel32.CreateEventW(null, 1, 0, null);
  if (event) made.push(["Event", event]);
  const token = new BigUint64Array(1);
  const TOKEN_QUERY = 0x8;
  if (advapi32().OpenProcessToken(kernel32.GetCurrentProcess(), TOKEN_QUERY, token)) {
    made.push(["Token", token[0]]);
  }
  const pipeName = String.raw`\\.\pipe\winpipe-type-probe-${kernel32.GetCurrentProcessId()}`;
  const pipe = kernel32.CreateNamedPipeW(
    toWide(pipeName),
    PIPE_ACCESS_INBOUND,
    PIPE_TYPE_BYTE,
    1,
    0,
    0,
    0,
    null,
  );
  if (pipe !== 0xffff_ffff_ffff_ffffn) made.push(["File", pipe]);
  const table = handleTable() ?? [];
  for (const [name, h] of made) {
    const entry = table.find((e) => e.handle === Number(h));
    if (entry) names.set(entry.type, name);
    kernel32.CloseHandle(h);
  }
  const wine = [...names].every(([index, name]) => WINE_TYPES[index] === name);
  if (process.env.WINPIPE_UNDER_WINE && names.size > 0 && wine) {
    WINE_TYPES.forEach((name, index) => names.set(index, name));
  }
  return (typeNames = names);
}

/** A handle as a reader of the report wants it: value, type, access. */
export function describeHandle(e: HandleEntry): string {
  const name = knownTypes().get(e.type) ?? `type #${e.type}`;
  return `0x${e.handle.toString(16)} ${name} (access 0x${e.access.toString(16)})`;
}

/** Handles in `now` that were not in `before` (by value and type). */
export function newHandles(before: HandleEntry[], now: HandleEntry[]): HandleEntry[] {
  const seen = new Set(before.map((e) => `${e.handle}:${e.type}`));
  return now.filter((e) => !seen.has(`${e.handle}:${e.type}`));
}

/** Counts by type name, e.g. { File: 12, Event: 30, Thread: 9 }. */
export function countByType(entries: HandleEntry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of entries) {
    const name = knownTypes().get(e.type) ?? `type #${e.type}`;
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
