/**
 * This process's handles, for leak checks that can fail, and for reports that say what was left
 * open (the chaos run lists new handles by value and type).
 *
 * `GetProcessHandleCount` is the documented count, but Wine 10 always reports 0 there, which
 * would make every "count is back to its baseline" assertion compare 0 with 0. So handles are
 * read from the system handle table (`NtQuerySystemInformation`, entries whose process id is
 * ours; Wine implements it), with each handle's type (`NtQueryObject`). Thread handles are left
 * out: winpipe makes no threads, and the runtimes' own pools start and end threads as they
 * please (Deno's blocking pool, which runs its `nonblocking` FFI calls, lets idle threads go).
 * A count of 0 fails the test.
 */
import assert from "node:assert/strict";
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
const EX_HANDLE = 16;
const EX_ACCESS = 24;
const EX_TYPE = 30;
const ObjectTypeInformation = 2;

let buffer = new Uint8Array(new ArrayBuffer(1 << 20));
const typeNames = new Map<number, string>();

/** One of this process's handles: its value, its object type's index, its access mask. */
export interface HandleEntry {
  handle: number;
  type: number;
  access: number;
}

/** This process's entries in the system handle table, or undefined if Windows has no such class. */
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
    break;
  }
  const view = new DataView(buffer.buffer);
  const mine: HandleEntry[] = [];
  const n = Number(view.getBigUint64(0, true));
  for (let i = 0; i < n; i++) {
    const entry = EX_HEADER + i * EX_ENTRY;
    if (view.getBigUint64(entry + EX_PID, true) !== pid) continue;
    mine.push({
      handle: Number(view.getBigUint64(entry + EX_HANDLE, true)),
      type: view.getUint16(entry + EX_TYPE, true),
      access: view.getUint32(entry + EX_ACCESS, true),
    });
  }
  return mine;
}

/**
 * The name of a type index ("File", "Event", …): `NtQueryObject(ObjectTypeInformation)` on one of
 * this process's handles of that type. A handle may be closed (and its value reused) by another
 * thread meanwhile, so up to three are tried.
 */
function typeName(type: number, table: HandleEntry[]): string {
  let name = typeNames.get(type);
  if (name) return name;
  for (const e of table.filter((e) => e.type === type).slice(0, 3)) {
    name = objectTypeName(BigInt(e.handle));
    if (name) {
      typeNames.set(type, name);
      return name;
    }
  }
  return `type #${type}`;
}

/** NtQueryObject(ObjectTypeInformation): the type's name, from its UNICODE_STRING. */
function objectTypeName(handle: bigint): string | undefined {
  const { ntdll, addressOf } = native();
  const info = new Uint8Array(new ArrayBuffer(4096));
  const status = ntdll().NtQueryObject(
    handle,
    ObjectTypeInformation,
    info,
    info.byteLength,
    new Uint32Array(1),
  );
  if (status >>> 0 !== 0) return undefined;
  // OBJECT_TYPE_INFORMATION begins with UNICODE_STRING { USHORT Length, MaximumLength; PWSTR }.
  const view = new DataView(info.buffer);
  const length = view.getUint16(0, true);
  const offset = Number(view.getBigUint64(8, true) - addressOf(info));
  if (offset < 16 || offset % 2 || offset + length > info.byteLength) return undefined;
  return String.fromCharCode(...new Uint16Array(info.buffer, offset, length / 2)) || undefined;
}

/** Names every type in `table` now, so that later reports need no lookup. */
export function nameTypes(table: HandleEntry[]): void {
  for (const e of table) typeName(e.type, table);
}

/** A handle as a report wants it: value, type, access. */
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
 * Types the runtimes own, left out of leak checks (measured under Wine 10): Deno's blocking pool,
 * where its `nonblocking` FFI calls run, keeps a Thread handle per live thread for 10 s after its
 * last task, and Bun's count moves by one or two while it sits idle. winpipe makes no threads.
 */
export const RUNTIME_OWNED_TYPES: readonly string[] = ["Thread"];

/** Per type, what changed from `before` to `after` ("File +1"), runtime-owned types left out. */
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

/** Handle counts by object type, runtime-owned types left out; or undefined. */
export function handleCensus(): Record<string, number> | undefined {
  const table = handleTable();
  if (!table) return undefined;
  const census = countByType(table);
  for (const t of RUNTIME_OWNED_TYPES) delete census[t];
  return census;
}

/** `GetProcessHandleCount` for this process (0 under Wine 10). */
export function getProcessHandleCount(): number {
  const { kernel32 } = native();
  const count = new Uint32Array(1);
  return kernel32.GetProcessHandleCount(kernel32.GetCurrentProcess(), count) ? count[0] : 0;
}

/** A reading of this process's handles, to compare with a later one. */
export interface HandleSnapshot {
  total: number;
  byType: Record<string, number> | undefined;
}

/**
 * This process's handles now: the handle table's count (Thread handles left out) where it can be
 * read, otherwise `GetProcessHandleCount`. Throws when the count reads 0: a leak check must
 * never compare 0 with 0.
 */
export function handleSnapshot(): HandleSnapshot {
  const byType = handleCensus();
  const total = byType
    ? Object.values(byType).reduce((a, b) => a + b, 0)
    : getProcessHandleCount();
  if (total === 0) {
    throw new Error(
      "cannot count this process's handles: the system handle table and "
        + "GetProcessHandleCount both read 0",
    );
  }
  return { total, byType };
}

let warmed: Promise<void> | undefined;

/**
 * The Win32 thread pool makes its completion port and workers on first use and keeps them: one
 * pipe served and closed first, so that no baseline is taken before they exist.
 */
function warmUp(): Promise<void> {
  warmed ??= (async () => {
    const { connect, listen } = await import("../../mod.ts");
    const name = String.raw`\\.\pipe\winpipe-warm-up-${native().kernel32.GetCurrentProcessId()}`;
    const server = listen(name);
    const accepted = server.accept();
    const client = await connect(name);
    const peer = (await accepted)!;
    client.writer!.write("warm");
    await peer.readable.getReader().read();
    await Promise.all([client.close(), peer.close()]);
    await server.close();
  })();
  return warmed;
}

/**
 * A baseline: a snapshot taken once two readings 50 ms apart agree, so that an object an earlier
 * test is still tearing down (on a later turn) is not counted in it.
 */
export async function settledSnapshot(ms = 2_000): Promise<HandleSnapshot> {
  await warmUp();
  const deadline = performance.now() + ms;
  let last = handleSnapshot();
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const now = handleSnapshot();
    if (sameHandles(now, last) || performance.now() > deadline) return now;
    last = now;
  }
}

/** Equal counts, type by type where the types are known. */
function sameHandles(a: HandleSnapshot, b: HandleSnapshot): boolean {
  if (a.total !== b.total) return false;
  if (!a.byType || !b.byType) return true;
  const types = new Set([...Object.keys(a.byType), ...Object.keys(b.byType)]);
  return [...types].every((t) => (a.byType![t] ?? 0) === (b.byType![t] ?? 0));
}

/** The count alone (see {@link handleSnapshot}). */
export function processHandleCount(): number {
  return handleSnapshot().total;
}

/** No type has more handles in `now` than in `before` (a leak is always an increase). */
function noneGrew(before: HandleSnapshot, now: HandleSnapshot): boolean {
  if (!before.byType || !now.byType) return now.total <= before.total;
  return Object.entries(now.byType).every(([t, n]) => n <= (before.byType![t] ?? 0));
}

/**
 * Asserts that no handle type has grown since `before`: what winpipe made is all closed. Teardown
 * finishes on later turns (a pool object is closed after its callbacks are waited for), so it
 * polls for up to `ms`. A type may shrink: the runtimes retire idle threads of their own, and
 * their wait objects go with them (measured: an Event less after a 2 s idle wait in Deno).
 */
export async function assertHandlesBack(before: HandleSnapshot, what: string, ms = 2_000) {
  const deadline = performance.now() + ms;
  let now = handleSnapshot();
  while (!noneGrew(before, now) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    now = handleSnapshot();
  }
  assert.ok(noneGrew(before, now), `${what}: ${describeDiff(before, now)}`);
}

function describeDiff(before: HandleSnapshot, after: HandleSnapshot): string {
  const totals = `${before.total} handles before, ${after.total} now`;
  if (!before.byType || !after.byType) return totals;
  return `${totals} (${typeDifferences(before.byType, after.byType).join(", ")})`;
}
