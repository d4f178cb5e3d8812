/**
 * Who is at the other end of a pipe: the owner of the pipe a client opened (checked against
 * `expectedOwner`, as wireguard's `namedpipe` does, so that a squatter's pipe is refused before a
 * byte is written), and the user of the peer process (`PipeConnection.peerUser`).
 *
 * @module
 */
import { PipeError, Win32 } from "../core/errors.ts";
import { requireNative } from "./native.ts";
import { currentUserSid, takeLocalWideString, tokenUserSid } from "./security_descriptor.ts";

const SE_KERNEL_OBJECT = 6;
const OWNER_SECURITY_INFORMATION = 1;
const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
const TOKEN_QUERY = 0x0008;

/** The owner SID of a kernel object (a pipe handle opened with READ_CONTROL), as a string. */
export function ownerSid(handle: bigint, path: string | undefined): string {
  const { kernel32, advapi32 } = requireNative();
  const a = advapi32();
  const owner = new BigUint64Array(1);
  const sd = new BigUint64Array(1);
  const code = a.GetSecurityInfo(
    handle,
    SE_KERNEL_OBJECT,
    OWNER_SECURITY_INFORMATION,
    owner,
    null,
    null,
    null,
    sd,
  );
  if (code !== 0) throw new PipeError({ errno: code, syscall: "GetSecurityInfo", path });
  // The owner SID points into the descriptor, which is ours to LocalFree once it is read.
  try {
    const text = new BigUint64Array(1);
    if (!a.ConvertSidToStringSidW(owner[0], text)) {
      throw new PipeError({ errno: kernel32.GetLastError(), syscall: "ConvertSidToStringSidW" });
    }
    return takeLocalWideString(text[0]);
  } finally {
    kernel32.LocalFree(sd[0]);
  }
}

/**
 * Refuses a pipe whose owner is not `expected` ("self": this process's user): the handle is the
 * caller's to close. `ERROR_ACCESS_DENIED`, naming both SIDs.
 */
export function checkPipeOwner(handle: bigint, expected: string, path: string): void {
  const want = expected === "self" ? currentUserSid() : expected;
  const got = ownerSid(handle, path);
  if (got.toUpperCase() !== want.toUpperCase()) {
    throw new PipeError({
      errno: Win32.ERROR_ACCESS_DENIED,
      syscall: "connect",
      path,
      detail: `the pipe is owned by ${got}, not by the expected owner ${want}; refusing it`,
    });
  }
}

/**
 * The user SID of process `pid`, or undefined when it cannot be read (the process is gone, or
 * runs as a user whose token this one may not query). `notAfter` (ms since the epoch) is when the
 * pipe was connected: a process created after it holds a recycled id, and is not the peer.
 */
export function processUserSid(pid: number, notAfter: number): string | undefined {
  if (!pid) return undefined;
  const { kernel32, advapi32 } = requireNative();
  const process = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (process === 0n) return undefined;
  try {
    const [created, exited, kernel, user] = [1, 2, 3, 4].map(() => new BigUint64Array(1));
    if (!kernel32.GetProcessTimes(process, created, exited, kernel, user)) return undefined;
    // FILETIME: 100 ns units since 1601-01-01.
    const since1970 = Number(created[0] / 10_000n) - 11_644_473_600_000;
    if (since1970 > notAfter) return undefined;
    const token = new BigUint64Array(1);
    if (!advapi32().OpenProcessToken(process, TOKEN_QUERY, token)) return undefined;
    try {
      return tokenUserSid(token[0]);
    } catch {
      return undefined;
    } finally {
      kernel32.CloseHandle(token[0]);
    }
  } finally {
    kernel32.CloseHandle(process);
  }
}
