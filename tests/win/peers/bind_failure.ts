/**
 * The child of tests/win/server_lifetime.test.ts's bind test. In a fresh process no pipe is bound
 * yet, so `OverlappedPipe.bind` makes the process-wide completion callback (in its constructor);
 * here making it throws. Prints what bind threw, how often the owned handle was closed, and what
 * a client then gets for the name, as JSON:
 *
 *   <runtime> tests/win/peers/bind_failure.ts PIPE_NAME
 *   {"thrown":"injected: no callback","closes":1,"connect":"ERROR_FILE_NOT_FOUND"}
 */
import process from "node:process";
import { toWide } from "../../../core/names.ts";
import {
  FILE_FLAG_OVERLAPPED,
  INVALID_HANDLE_VALUE,
  PIPE_ACCESS_DUPLEX,
  PIPE_REJECT_REMOTE_CLIENTS,
  PIPE_TYPE_BYTE,
} from "../../../ffi/kernel32.ts";
import { native } from "../../../ffi/runtime.ts";
import { connect, PipeError } from "../../../mod.ts";
import { OverlappedPipe } from "../../../windows/completion/mod.ts";
import { securityAttributes } from "../../../windows/security.ts";
import { inject } from "../faults.ts";

const name = process.argv[2];
const nat = native();
const handle = nat.kernel32.CreateNamedPipeW(
  toWide(name),
  PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
  PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS,
  1,
  0,
  0,
  0,
  securityAttributes(),
);
if (handle === INVALID_HANDLE_VALUE) {
  throw new Error(`CreateNamedPipeW: ${nat.kernel32.GetLastError()}`);
}

let closes = 0;
const restoreClose = inject("CloseHandle", (real) => (h) => {
  if (h === handle) closes++;
  return real(h);
});
const table = nat as { threadSafeIoCallback: typeof nat.threadSafeIoCallback };
const realCallback = table.threadSafeIoCallback;
table.threadSafeIoCallback = () => {
  throw new Error("injected: no callback");
};
let thrown = "";
try {
  OverlappedPipe.bind(handle, { owned: true, path: name });
} catch (e) {
  thrown = (e as Error).message;
} finally {
  table.threadSafeIoCallback = realCallback;
  restoreClose();
}

// Had the handle stayed open, its instance would take this client.
let connected = "connected";
try {
  const conn = await connect(name);
  await conn.close().catch(() => {});
} catch (e) {
  connected = e instanceof PipeError ? e.code : String(e);
}
console.log(JSON.stringify({ thrown, closes, connect: connected }));
