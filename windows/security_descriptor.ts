/**
 * Security descriptors for server pipes, from SDDL: "user" (the default) allows only the current
 * user, SYSTEM and Administrators; "default" is Windows' default for the process; anything else
 * is taken as SDDL.
 *
 * @module
 */
import { PipeError } from "../core/errors.ts";
import { toWide } from "../core/names.ts";
import { requireNative } from "./native.ts";

/** What `listen({ security })` takes. */
export type PipeSecurity = "user" | "default" | string;

const TOKEN_QUERY = 0x0008;
const TOKEN_USER = 1;
const SDDL_REVISION_1 = 1;

/** A wide string that Windows allocated with LocalAlloc: read it, then LocalFree it. */
export function takeLocalWideString(address: bigint): string {
  const { kernel32, copyFrom } = requireNative();
  try {
    const bytes = new Uint8Array(kernel32.lstrlenW(address) * 2);
    copyFrom(address, bytes);
    return new TextDecoder("utf-16le").decode(bytes);
  } finally {
    kernel32.LocalFree(address);
  }
}

/** The current process user's SID, as a string ("S-1-5-21-…"). */
export function currentUserSid(): string {
  const { kernel32, advapi32 } = requireNative();
  const token = new BigUint64Array(1);
  if (!advapi32().OpenProcessToken(kernel32.GetCurrentProcess(), TOKEN_QUERY, token)) {
    throw new PipeError({ errno: kernel32.GetLastError(), syscall: "OpenProcessToken" });
  }
  try {
    return tokenUserSid(token[0]);
  } finally {
    kernel32.CloseHandle(token[0]);
  }
}

/** The user SID of an access token opened with TOKEN_QUERY, as a string. */
export function tokenUserSid(token: bigint): string {
  const { kernel32, advapi32 } = requireNative();
  const a = advapi32();
  // TOKEN_USER { SID_AND_ATTRIBUTES User { PSID Sid; DWORD Attributes } } + the SID itself,
  // in memory that does not move between the two calls.
  const info = new Uint8Array(new ArrayBuffer(512));
  const length = new Uint32Array(1);
  if (!a.GetTokenInformation(token, TOKEN_USER, info, info.byteLength, length)) {
    throw new PipeError({ errno: kernel32.GetLastError(), syscall: "GetTokenInformation" });
  }
  const sid = new DataView(info.buffer).getBigUint64(0, true);
  const out = new BigUint64Array(1);
  if (!a.ConvertSidToStringSidW(sid, out)) {
    throw new PipeError({ errno: kernel32.GetLastError(), syscall: "ConvertSidToStringSidW" });
  }
  return takeLocalWideString(out[0]);
}

/** The SDDL for a `security` option, or null for Windows' default. */
export function sddlFor(security: PipeSecurity): string | null {
  if (security === "default") return null;
  if (security === "user") {
    // Owned by this user, said outright (an elevated process's objects are otherwise owned by
    // Administrators, and Wine gives them the primary group), so that a client's expectedOwner
    // "self" matches. Protected DACL: full control for SYSTEM, Administrators and this user.
    const sid = currentUserSid();
    return `O:${sid}D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;${sid})`;
  }
  if (typeof security !== "string" || security.length === 0) {
    throw new TypeError(`security must be "user", "default" or an SDDL string, got ${security}`);
  }
  return security;
}

/**
 * A security descriptor made from SDDL (LocalAlloc'd by Windows). `free()` releases it once.
 */
export function securityDescriptor(sddl: string | null): { address: bigint; free(): void } {
  if (sddl === null) return { address: 0n, free() {} };
  const { kernel32, advapi32 } = requireNative();
  const out = new BigUint64Array(1);
  if (
    !advapi32().ConvertStringSecurityDescriptorToSecurityDescriptorW(
      toWide(sddl),
      SDDL_REVISION_1,
      out,
      null,
    )
  ) {
    throw new PipeError({
      errno: kernel32.GetLastError(),
      syscall: "ConvertStringSecurityDescriptorToSecurityDescriptorW",
      detail: `invalid SDDL ${JSON.stringify(sddl)}`,
    });
  }
  let address: bigint | null = out[0];
  return {
    address,
    free() {
      if (address !== null) kernel32.LocalFree(address);
      address = null;
    },
  };
}
