// A squatter: another process that wants our pipe's name. It is run by the runtime under test
// (deno.exe run -A, or bun.exe), and talks to the test through files in DIR only.
//
//   squatter.ts hold NAME DIR SECONDS   create NAME (first instance) and hold it
//   squatter.ts race NAME DIR SECONDS   spin until NAME has no instance, then take it and hold it
//
// DIR/ready is written once it runs (hold: once it holds the name); DIR/stop ends it; DIR/result
// gets {attempts, squatted, joins} at the end. `squatted` means it created the name afresh: its
// instance is the name's only one (FILE_PIPE_LOCAL_INFORMATION.CurrentInstances is 1).
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { toWide } from "../../../core/names.ts";
import { native } from "../../../ffi/runtime.ts";
import { pipeLocalInformation } from "../../../windows/pipe_info.ts";

const [mode, name, dir, seconds] = process.argv.slice(2);
const { kernel32 } = native();
const wide = toWide(name);
const INVALID = 0xffff_ffff_ffff_ffffn;
const PIPE_ACCESS_DUPLEX = 3;
const FILE_FLAG_OVERLAPPED = 0x4000_0000;
const FILE_FLAG_FIRST_PIPE_INSTANCE = 0x0008_0000;
const NMPWAIT_NOWAIT = 1;
const ERROR_FILE_NOT_FOUND = 2;

function instances(handle: bigint): number {
  return pipeLocalInformation(handle)?.currentInstances ?? -1;
}

/** CreateNamedPipeW as a squatter would: FILE_FLAG_FIRST_PIPE_INSTANCE, any number of instances. */
function create(): bigint {
  return kernel32.CreateNamedPipeW(
    wide,
    PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
    0,
    255,
    4096,
    4096,
    0,
    null,
  );
}

const deadline = Date.now() + Number(seconds) * 1000;
const stopFile = join(dir, "stop");
let attempts = 0;
let joins = 0;
let held: bigint | null = null;

if (mode === "hold") {
  const h = create();
  if (h !== INVALID && instances(h) === 1) held = h;
} else {
  writeFileSync(join(dir, "ready"), "");
  // Spin: Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE, so a name that exists is probed first
  // (WaitNamedPipeW says ERROR_FILE_NOT_FOUND only when there is no instance at all), and an
  // instance that joined someone else's pipe is dropped at once.
  while (held === null && Date.now() < deadline) {
    for (let i = 0; i < 256 && held === null; i++) {
      attempts++;
      if (kernel32.WaitNamedPipeW(wide, NMPWAIT_NOWAIT)) continue;
      if (kernel32.GetLastError() !== ERROR_FILE_NOT_FOUND) continue;
      const h = create();
      if (h === INVALID) continue;
      if (instances(h) === 1) held = h;
      else {
        joins++;
        kernel32.CloseHandle(h);
      }
    }
    if (existsSync(stopFile)) break;
  }
}
if (mode === "hold") writeFileSync(join(dir, "ready"), held === null ? "failed" : "");
while (!existsSync(stopFile) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 20));
}
writeFileSync(join(dir, "result"), JSON.stringify({ attempts, squatted: held !== null, joins }));
if (held !== null) kernel32.CloseHandle(held);
