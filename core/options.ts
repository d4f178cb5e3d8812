/**
 * Every public option, checked and normalised once, before any system call. The rest of the
 * code reads only the normalised settings, never the caller's object (whose getters could answer
 * differently later).
 *
 * @module
 */
import { isWindows } from "../ffi/runtime.ts";
import { describe } from "./names.ts";

/** The Win32 DWORD range. */
const MAX_DWORD = 0xffff_ffff;

/** The caller's options object: `undefined` is `{}`; anything but an object is a TypeError. */
export function optionsObject(o: unknown, where: string): Record<string, unknown> {
  if (o === undefined) return {};
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    throw new TypeError(`${where}: options must be an object, got ${describe(o)}`);
  }
  return o as Record<string, unknown>;
}

/** A boolean option, or its default. */
export function booleanOption(
  o: Record<string, unknown>,
  key: string,
  where: string,
  fallback: boolean,
): boolean {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") {
    throw new TypeError(`${where}: ${key} must be true or false, got ${describe(v)}`);
  }
  return v;
}

/** A whole number option in [min, max], or its default. */
export function integerOption(
  o: Record<string, unknown>,
  key: string,
  where: string,
  range: { min: number; max: number; fallback: number; unit?: string },
): number {
  const v = o[key];
  if (v === undefined) return range.fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < range.min || v > range.max) {
    throw new TypeError(
      `${where}: ${key} must be a whole number${
        range.unit ? ` of ${range.unit}` : ""
      } from ${range.min} to ${range.max}, got ${describe(v)}`,
    );
  }
  return v;
}

/**
 * A timeout in milliseconds: a number >= 0, where `Infinity` means "no timeout". Longer delays
 * than `setTimeout` can hold are handled by the caller (see timeouts.ts).
 */
export function timeoutValue(v: unknown, name: string, where: string): number {
  if (typeof v !== "number" || Number.isNaN(v) || v < 0) {
    throw new TypeError(
      `${where}: ${name} must be a number of milliseconds >= 0 (Infinity for none), got ${
        describe(v)
      }`,
    );
  }
  return v;
}

/** An optional AbortSignal. */
export function signalOption(o: Record<string, unknown>, where: string): AbortSignal | undefined {
  const v = o.signal;
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) {
    throw new TypeError(`${where}: signal must be an AbortSignal, got ${describe(v)}`);
  }
  return v;
}

/** An optional string option. */
export function stringOption(
  o: Record<string, unknown>,
  key: string,
  where: string,
): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    throw new TypeError(`${where}: ${key} must be a string, got ${describe(v)}`);
  }
  return v;
}

/** The writer's settings. */
export interface WriterSettings {
  readonly highWaterMark: number;
  /** No `highWaterMark` was given: the writer may make room for two large chunks (PipeWriter). */
  readonly defaultMark: boolean;
  readonly messageMode: boolean;
  /** How long `close()` waits for its flush (ms; `Infinity`: no bound). */
  readonly closeTimeout: number;
}

/** `close()`'s bound on its flush unless `closeTimeout` says otherwise. */
const DEFAULT_CLOSE_TIMEOUT = 30_000;

// Each completion costs about the same whatever it carries, so bytes per completion set the
// rate: measured under Wine (bench/RESULTS.md), 256 B writes ran 40-100 MB/s with a 64 KiB mark
// and 120-180 MB/s with 1 MiB, where the largest single write (MAX_BLOCK) is too.
const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

/** `highWaterMark`, `messageMode` and `closeTimeout`. */
export function writerSettings(o: Record<string, unknown>, where: string): WriterSettings {
  return {
    closeTimeout: o.closeTimeout === undefined
      ? DEFAULT_CLOSE_TIMEOUT
      : timeoutValue(o.closeTimeout, "closeTimeout", where),
    highWaterMark: integerOption(o, "highWaterMark", where, {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
      fallback: DEFAULT_HIGH_WATER_MARK,
      unit: "bytes",
    }),
    defaultMark: o.highWaterMark === undefined,
    messageMode: booleanOption(o, "messageMode", where, false),
  };
}

/** The reader's settings. */
export interface ReaderSettings {
  readonly readSize: number;
  readonly messageMode: boolean;
  /** No `readSize` was given: reads grow while they come back full (see PipeReader). */
  readonly adaptive: boolean;
}

const DEFAULT_READ_SIZE = 64 * 1024;

/** `readSize` (one ReadFile's DWORD count) and `messageMode`. */
export function readerSettings(o: Record<string, unknown>, where: string): ReaderSettings {
  return {
    readSize: integerOption(o, "readSize", where, {
      min: 1,
      max: MAX_DWORD,
      fallback: DEFAULT_READ_SIZE,
      unit: "bytes",
    }),
    messageMode: booleanOption(o, "messageMode", where, false),
    adaptive: o.readSize === undefined,
  };
}

/** Opening a pipe by name. */
export interface OpenSettings {
  readonly timeout: number;
  readonly wait: boolean;
  readonly signal: AbortSignal | undefined;
  readonly allowRemote: boolean;
  /** "self", a uid (Linux, macOS) or a SID string (Windows); undefined: not checked. */
  readonly expectedOwner: number | string | undefined;
}

const DEFAULT_OPEN_TIMEOUT = 5_000;

/** `timeout`, `wait`, `signal`, `allowRemote` and `expectedOwner`. */
export function openSettings(o: Record<string, unknown>, where: string): OpenSettings {
  return {
    timeout: o.timeout === undefined
      ? DEFAULT_OPEN_TIMEOUT
      : timeoutValue(o.timeout, "timeout", where),
    wait: booleanOption(o, "wait", where, false),
    signal: signalOption(o, where),
    allowRemote: booleanOption(o, "allowRemote", where, false),
    expectedOwner: ownerOption(o.expectedOwner, where),
  };
}

const SID = /^S-1-\d+(-\d+)+$/i;

/** `expectedOwner`: "self" on every OS, a uid on Linux and macOS, a SID string on Windows. */
function ownerOption(v: unknown, where: string): number | string | undefined {
  if (v === undefined || v === "self") return v;
  if (isWindows()) {
    if (typeof v === "string" && SID.test(v)) return v;
    throw new TypeError(
      `${where}: expectedOwner on Windows must be "self" or a SID string ("S-1-5-…"), `
        + `got ${describe(v)}`,
    );
  }
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= 0xffff_ffff) return v;
  throw new TypeError(
    `${where}: expectedOwner on Linux and macOS must be "self" or a uid (a whole number from 0 `
      + `to 4294967295), got ${describe(v)}`,
  );
}

/** `owned` and `path`, for the `fromHandle` constructors. */
export function handleSettings(
  o: Record<string, unknown>,
  where: string,
): { owned: boolean; path: string | undefined } {
  return { owned: booleanOption(o, "owned", where, false), path: stringOption(o, "path", where) };
}

/** A pipe handle value: a bigint that is neither NULL nor INVALID_HANDLE_VALUE. */
export function checkHandle(handle: unknown, where: string): bigint {
  if (typeof handle !== "bigint" || handle <= 0n || handle >= 0xffff_ffff_ffff_ffffn) {
    throw new TypeError(`${where}: handle must be a bigint pipe handle, got ${describe(handle)}`);
  }
  return handle;
}
