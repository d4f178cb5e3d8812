// A pipe handle passed to a child process by inheritance, as docs/api.md ("Where a handle comes
// from") shows: the parent opens the client end inheritable and overlapped, starts the child with
// the handle's value in PIPE_HANDLE, and closes its own copy; the child wraps it with
// PipeWriter.fromHandle or PipeReader.fromHandle (tests/win/peers/inherited.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import {
  FILE_FLAG_OVERLAPPED,
  GENERIC_READ,
  GENERIC_WRITE,
  OPEN_EXISTING,
} from "../../ffi/kernel32.ts";
import { listen } from "../../mod.ts";
import { requireNative } from "../../windows/native.ts";
import { scriptCommand, start } from "./child.ts";
import { uniqueName, within } from "./server_end.ts";

const LIMIT = 60_000;

/** The client end of `name`, opened inheritable (bInheritHandle = TRUE) and overlapped. */
function openInheritable(name: string, access: number): bigint {
  const { kernel32 } = requireNative();
  const sa = new Uint8Array(24); // SECURITY_ATTRIBUTES on x64
  new DataView(sa.buffer).setUint32(0, 24, true); // nLength
  new DataView(sa.buffer).setInt32(16, 1, true); // bInheritHandle = TRUE
  const wide = new Uint16Array(name.length + 1);
  for (let i = 0; i < name.length; i++) wide[i] = name.charCodeAt(i);
  const h = kernel32.CreateFileW(wide, access, 0, sa, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, 0n);
  assert.notEqual(h, 0xffff_ffff_ffff_ffffn, `CreateFileW: ${kernel32.GetLastError()}`);
  return h;
}

async function withChild(
  mode: "read" | "write",
  body: (
    server: ReturnType<typeof listen>,
    name: string,
    spawnChild: () => ReturnType<typeof start>,
  ) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "winpipe-inherit-"));
  const name = uniqueName(`inherit-${mode}`);
  const server = listen(name);
  try {
    await body(server, name, () => {
      const handle = openInheritable(name, mode === "read" ? GENERIC_READ : GENERIC_WRITE);
      const [exe, args] = scriptCommand("tests/win/peers/inherited.ts", [
        "--allow-ffi",
        "--allow-env",
      ]);
      try {
        return start(exe, [...args, mode], dir, LIMIT, {
          env: { ...process.env, PIPE_HANDLE: String(handle) },
        });
      } finally {
        requireNative().kernel32.CloseHandle(handle); // the child has its own copy now
      }
    });
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a child writes through an inherited handle with PipeWriter.fromHandle", () =>
  withChild("write", async (server, _name, spawnChild) => {
    const child = spawnChild();
    const conn = (await within(LIMIT, server.accept()))!;
    const got = await within(LIMIT, new Response(conn.readable).text());
    await conn.close();
    const e = await child.exited;
    assert.equal(e.code, 0, `${e.stdout}${e.stderr}`);
    assert.equal(got, "from the child");
  }));

test("a child reads through an inherited handle with PipeReader.fromHandle", () =>
  withChild("read", async (server, _name, spawnChild) => {
    const child = spawnChild();
    const conn = (await within(LIMIT, server.accept()))!;
    conn.writer!.write("to the child");
    await conn.close(); // flushes; the child's read ends when the handle closes
    const e = await child.exited;
    assert.equal(e.code, 0, `${e.stdout}${e.stderr}`);
    assert.equal(e.stdout.trim(), "to the child");
  }));
