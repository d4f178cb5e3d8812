/**
 * This process's handles, for leak checks that can fail.
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
const EX_TYPE = 30;
const ObjectTypeInformation = 2;

let buffer = new Uint8Array(new ArrayBuffer(1 << 20));
const typeNames = new Map<number, string>();

/** Handle counts by object type ("File", "Event", …), Thread handles left out; or undefined. */
export function handleCensus(): Record<string, number> | undefined {
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
  const census: Record<string, number> = {};
  const n = Number(view.getBigUint64(0, true));
  for (let i = 0; i < n; i++) {
    const entry = EX_HEADER + i * EX_ENTRY;
    if (view.getBigUint64(entry + EX_PID, true) !== pid) continue;
    const index = view.getUint16(entry + EX_TYPE, true);
    let type = typeNames.get(index);
    if (type === undefined) {
      type = objectTypeName(view.getBigUint64(entry + EX_HANDLE, true));
      typeNames.set(index, type);
    }
    if (type !== "Thread") census[type] = (census[type] ?? 0) + 1;
  }
  return census;
}

/** NtQueryObject(ObjectTypeInformation): the type's name, from its UNICODE_STRING. */
function objectTypeName(handle: bigint): string {
  const { ntdll, addressOf } = native();
  const info = new Uint8Array(new ArrayBuffer(1024));
  const status = ntdll().NtQueryObject(
    handle,
    ObjectTypeInformation,
    info,
    info.byteLength,
    new Uint32Array(1),
  );
  if (status !== 0) return `type?${status.toString(16)}`;
  // OBJECT_TYPE_INFORMATION begins with UNICODE_STRING { USHORT Length, MaximumLength; PWSTR }.
  const view = new DataView(info.buffer);
  const length = view.getUint16(0, true);
  const offset = Number(view.getBigUint64(8, true) - addressOf(info));
  if (offset < 0 || offset + length > info.byteLength) return "type?";
  return new TextDecoder("utf-16le").decode(info.subarray(offset, offset + length)) || "type?";
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
  if (!before.byType || !after.byType) return `${before.total} handles before, ${after.total} now`;
  const types = new Set([...Object.keys(before.byType), ...Object.keys(after.byType)]);
  const changes = [...types]
    .map((t) => [t, (after.byType![t] ?? 0) - (before.byType![t] ?? 0)] as const)
    .filter(([, d]) => d !== 0)
    .map(([t, d]) => `${t} ${d > 0 ? "+" : ""}${d}`);
  return `${before.total} handles before, ${after.total} now (${changes.join(", ")})`;
}
