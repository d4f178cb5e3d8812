// connect(), listen() and PipeReader against real kernel32, and against Node for Windows' net.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import type {
  ReadableStream as NodeReadable,
  WritableStream as NodeWritable,
} from "node:stream/web";
import { test } from "node:test";
import { native } from "../../ffi/runtime.ts";
import { connect, listen, type PipeConnection, PipeError } from "../../mod.ts";
import { pipeLocalInformation } from "../../windows/pipe_info.ts";
import { currentUserSid, takeLocalWideString } from "../../windows/security_descriptor.ts";
import { readInOddParts } from "../read_parts.ts";
import { assertHandlesBack, settledSnapshot } from "./handles.ts";
import { pair, Pattern, sleep, uniqueName, within } from "./server_end.ts";

const MiB = 1024 * 1024;
const pattern = new Pattern(11);

async function readAll(stream: ReadableStream<Uint8Array>, limit = Infinity): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = stream.getReader();
  for (let r; !(r = await reader.read()).done;) {
    parts.push(r.value);
    n += r.value.byteLength;
    if (n >= limit) break;
  }
  reader.releaseLock();
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * Test options for a check Wine cannot pass: reported as skipped there, with what was measured,
 * and run on Windows.
 */
function wineLacks(measured: string) {
  return { skip: process.env.WINPIPE_UNDER_WINE ? `Wine lacks it: ${measured}` : false };
}

/** The DACL of a handle as SDDL: GetSecurityInfo, then ConvertSecurityDescriptorToString…W. */
function daclOf(handle: bigint): string {
  const { kernel32, advapi32 } = native();
  const SE_KERNEL_OBJECT = 6;
  const DACL_SECURITY_INFORMATION = 4;
  const sd = new BigUint64Array(1);
  const dacl = new BigUint64Array(1);
  const code = advapi32().GetSecurityInfo(
    handle,
    SE_KERNEL_OBJECT,
    DACL_SECURITY_INFORMATION,
    null,
    null,
    dacl,
    null,
    sd,
  );
  assert.equal(code, 0, `GetSecurityInfo: ${code}`);
  const text = new BigUint64Array(1);
  try {
    const ok = advapi32().ConvertSecurityDescriptorToStringSecurityDescriptorW(
      sd[0],
      1,
      DACL_SECURITY_INFORMATION,
      text,
      null,
    );
    assert.equal(ok, 1, "ConvertSecurityDescriptorToStringSecurityDescriptorW");
  } finally {
    kernel32.LocalFree(sd[0]);
  }
  return takeLocalWideString(text[0]);
}

/** An echo server on `name` until closed: every connection's bytes go straight back. */
function echoServer(name: string, options = {}) {
  const server = listen(name, options);
  const served = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of server) {
      handlers.push(conn.readable.pipeTo(conn.writable).catch(() => conn.close()));
    }
    await Promise.all(handlers);
  })();
  return { server, served };
}

test("our client and our server: bytes both ways, byte-exact", async () => {
  const name = uniqueName("echo");
  const { server } = echoServer(name);
  const conn = await connect(name);
  const size = 4 * MiB;
  const verify = pattern.verifier();
  const reading = (async () => {
    let n = 0;
    const reader = conn.readable.getReader();
    for (let r; n < size && !(r = await reader.read()).done;) {
      verify.check(r.value);
      n += r.value.byteLength;
    }
    reader.releaseLock();
    return n;
  })();
  for (let p = 0; p < size; p += 100_000) {
    if (!conn.writer!.write(pattern.at(p, Math.min(100_000, size - p)))) await conn.writer!.flush();
  }
  assert.equal(await within(30_000, reading), size);
  await conn.close();
  await server.close();
});

test("peerProcessId is the other end's process", async () => {
  const { client, conn, close } = await pair("pid");
  const me = native().kernel32.GetCurrentProcessId();
  assert.equal(client.peerProcessId, me);
  assert.equal(conn.peerProcessId, me);
  assert.equal(client.side, "client");
  assert.equal(conn.side, "server");
  await close();
});

test("the server always has an instance listening: 50 quick clients never see FILE_NOT_FOUND", async () => {
  const name = uniqueName("always");
  const server = listen(name);
  const seen: PipeConnection[] = [];
  const accepting = (async () => {
    for await (const c of server) {
      seen.push(c);
      if (seen.length === 50) break;
    }
  })();
  for (let i = 0; i < 50; i++) {
    const c = await connect(name, { timeout: 5_000 }); // no `wait`: a gap would throw
    await c.close();
  }
  await within(10_000, accepting);
  await Promise.all(seen.map((c) => c.close()));
  await server.close();
});

test("a second listen on the same name fails clearly (FILE_FLAG_FIRST_PIPE_INSTANCE)", async () => {
  const name = uniqueName("squat");
  const server = listen(name);
  assert.throws(() => listen(name), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.syscall, "CreateNamedPipeW");
    assert.match(e.message, /already in use \(EADDRINUSE\)/);
    return true;
  });
  await server.close();
  const again = listen(name); // free once closed
  await again.close();
});

test("message mode end to end: one write is one message, reads yield whole messages", async () => {
  const { client, conn, close } = await pair("msg", {
    server: { messageMode: true },
    client: { messageMode: true, readSize: 1000 },
  });
  // Sizes below, at and far above the reader's 1000-byte reads (ERROR_MORE_DATA parts).
  const sizes = [1, 999, 1000, 1001, 5000, 70_000, 3];
  const writer = conn.writer!;
  for (const [i, n] of sizes.entries()) writer.write(new Uint8Array(n).fill(i + 1));
  const r = client.readable.getReader();
  for (const [i, n] of sizes.entries()) {
    const { value } = await within(5_000, r.read());
    assert.equal(value!.byteLength, n, `message ${i}`);
    assert.ok(value!.every((b) => b === i + 1));
  }
  r.releaseLock();
  await within(5_000, writer.flush());
  await close();
});

test("message mode: empty messages (delimiters, keep-alives) arrive both ways as empty chunks", async () => {
  const { client, conn, close } = await pair("msg0", {
    server: { messageMode: true },
    client: { messageMode: true, readSize: 1000 },
  });
  const messages = ["", "a", "", "", "bcd", ""];
  // Server to client, then client to server: a WriteFile of 0 bytes, a read of 0 bytes.
  for (const m of messages) conn.writer!.write(m);
  for (const m of messages) client.writer!.write(m);
  const both = [client.readable.getReader(), conn.readable.getReader()];
  for (const [side, r] of both.entries()) {
    for (const [i, m] of messages.entries()) {
      const { value, done } = await within(5_000, r.read());
      assert.equal(done, false, `side ${side}, message ${i}`);
      assert.equal(new TextDecoder().decode(value), m, `side ${side}, message ${i}`);
    }
    r.releaseLock();
  }
  await within(5_000, conn.writer!.flush());
  await within(5_000, client.writer!.flush());
  assert.equal(conn.writer!.bytesToWrite, 0);
  await close();
});

test("a readable asked for after close() has ended: a read, and a Duplex.fromWeb, settle at once", async () => {
  const { client, conn, close } = await pair("late");
  await client.close();
  const r = await within(2_000, client.readable.getReader().read());
  assert.equal(r.done, true);
  // The same through node:stream, which libraries wrap a connection in (README "Node streams").
  const late = await pair("late-duplex");
  await late.client.close();
  const duplex = Duplex.fromWeb({
    readable: late.client.readable as unknown as NodeReadable,
    writable: late.client.writable as unknown as NodeWritable,
  });
  duplex.on("error", () => {}); // its writable half is closed: not what is tested
  const ended = new Promise<void>((resolve) => duplex.on("end", resolve));
  duplex.resume();
  await within(2_000, ended);
  await Promise.all([conn.close(), late.conn.close()]);
  await Promise.all([close(), late.close()]);
});

test("BYOB readers work", async () => {
  const { client, conn, close } = await pair("byob");
  conn.writer!.write(pattern.at(0, 10_000));
  const r = client.readable.getReader({ mode: "byob" });
  let got = 0;
  const verify = pattern.verifier();
  while (got < 10_000) {
    const { value } = await within(5_000, r.read(new Uint8Array(3000)));
    assert.ok(value!.byteLength <= 3000);
    verify.check(value!);
    got += value!.byteLength;
  }
  r.releaseLock();
  await close();
});

/** PeekNamedPipe with a buffer: the bytes waiting in the pipe, left there. */
function peekAll(handle: bigint): Uint8Array {
  const { kernel32 } = native();
  const total = new Uint32Array(1);
  assert.equal(kernel32.PeekNamedPipe(handle, null, 0, null, total, null), 1, "PeekNamedPipe");
  const buffer = new Uint8Array(new ArrayBuffer(Math.max(total[0], 1)));
  const read = new Uint32Array(1);
  assert.equal(kernel32.PeekNamedPipe(handle, buffer, buffer.byteLength, read, total, null), 1);
  return buffer.slice(0, read[0]);
}

test("the reader's cancel loses nothing: delivered + handed back + still in the pipe = written", async () => {
  const total = 48 * 1024; // fits the pipe's buffer: the peer's writes all complete
  const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  let handedBack = 0;
  // When cancel() comes: before any read; with a read waiting for data; with a read the kernel
  // has completed but JS has not heard of yet (the hand-back path); and mid-stream.
  const timings = [
    "no read",
    "read waiting",
    "read completed unseen",
    "mid-stream 3",
    "mid-stream 9",
  ];
  for (const timing of timings) {
    const { client, conn, close } = await pair("cancel", { client: { readSize: 1024 } });
    const r = client.readable.getReader();
    const delivered: Uint8Array[] = [];
    const written = pattern.at(0, total);
    let rest: Uint8Array;
    if (timing === "no read") {
      conn.writer!.write(written);
      await within(5_000, conn.writer!.flush());
      rest = await within(5_000, client.reader!.cancel());
    } else if (timing === "read waiting") {
      const pending = r.read();
      await sleep(30); // the ReadFile is in flight, with nothing to read yet
      rest = await within(5_000, client.reader!.cancel());
      assert.equal((await pending).done, true);
      conn.writer!.write(written);
      await within(5_000, conn.writer!.flush());
    } else if (timing === "read completed unseen") {
      const pending = r.read();
      await sleep(30);
      conn.writer!.write(written);
      assert.equal(conn.writer!.flushSync(5_000), true);
      block(200); // the read completes in the kernel; its callback cannot reach JS meanwhile
      rest = await within(5_000, client.reader!.cancel());
      assert.equal((await pending).done, true, "the stream ends; the bytes come back by cancel()");
    } else {
      const reads = Number(timing.split(" ")[1]);
      conn.writer!.write(written);
      for (let i = 0; i < reads; i++) delivered.push((await within(5_000, r.read())).value!);
      const pending = r.read();
      rest = await within(5_000, client.reader!.cancel());
      const last = await pending;
      if (!last.done) delivered.push(last.value);
      await within(5_000, conn.writer!.flush());
    }
    handedBack += rest.byteLength;
    const remaining = peekAll(client.handle!); // the client's writer still holds the handle
    const accounted = [...delivered, rest, remaining];
    const count = accounted.reduce((n, b) => n + b.byteLength, 0);
    assert.equal(count, total, `${timing}: ${delivered.length} reads, ${rest.byteLength} back`);
    pattern.verifier().check(Uint8Array.from(accounted.flatMap((b) => [...b])));
    await close();
  }
  assert.ok(
    handedBack > 0,
    "the hand-back path ran: a completed read's bytes came back by cancel()",
  );
});

test("close() flushes: everything written reaches a peer that reads only after the close", async () => {
  const { server, client, conn } = await pair("flushclose");
  conn.writer!.write(pattern.at(0, 48 * 1024)); // fits the 64 KiB buffer: completes at once
  await conn.close(); // the server side closes without DisconnectNamedPipe
  const got = await within(5_000, readAll(client.readable));
  assert.equal(got.byteLength, 48 * 1024);
  pattern.verifier().check(got);
  await client.close();
  await server.close();
});

test("Node for Windows' net client <-> our server: echo round trip", async () => {
  const name = uniqueName("nodeclient");
  const { server } = echoServer(name);
  const dir = mkdtempSync(join(tmpdir(), "winpipe-"));
  const result = join(dir, "r.json");
  const peer = spawn(
    process.env.WINPIPE_NODE || "node",
    [join("tests", "win", "peers", "node_echo_client.cjs"), name, String(3 * MiB), result],
    { stdio: "ignore" },
  );
  await within(60_000, new Promise((r) => peer.on("exit", r)), "node client");
  assert.deepEqual(JSON.parse(readFileSync(result, "utf8")), {
    sent: 3 * MiB,
    received: 3 * MiB,
    same: true,
  });
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a Node for Windows' net server <-> our client: echo round trip", async () => {
  const name = uniqueName("nodeserver");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-"));
  const result = join(dir, "r.json");
  const peer = spawn(
    process.env.WINPIPE_NODE || "node",
    [join("tests", "win", "peers", "node_echo_server.cjs"), name, result],
    { stdio: "ignore" },
  );
  try {
    for (let i = 0; !existsSync(result); i++) {
      if (i > 600) throw new Error("node server did not start");
      await sleep(20);
    }
    const conn = await connect(name, { timeout: 10_000 });
    const size = 3 * MiB;
    const reading = readAll(conn.readable, size);
    for (let p = 0; p < size; p += 65536) conn.writer!.write(pattern.at(p, 65536));
    const echoed = await within(30_000, reading);
    assert.equal(echoed.byteLength, size);
    pattern.verifier().check(echoed);
    await conn.close();
  } finally {
    peer.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the default DACL ("user") allows this user, SYSTEM and Administrators only', async () => {
  const { conn, close } = await pair("dacl");
  const sddl = daclOf(conn.handle!);
  const aces = [...sddl.matchAll(/\(([^)]*)\)/g)].map((m) => m[1].split(";"));
  const trustees = aces.map((ace) => ace[5]).sort();
  assert.deepEqual(trustees, ["BA", "SY", currentUserSid()].sort(), sddl);
  assert.ok(aces.every((ace) => ace[0] === "A"), `only allow ACEs: ${sddl}`);
  assert.match(sddl, /^D:P/, `a protected DACL: ${sddl}`);
  await close();
});

test("bad input to connect and listen is a TypeError", async () => {
  for (const bad of ["a/b", "..", "", "/tmp/x.sock", "./x.sock"]) {
    await assert.rejects(connect(bad), TypeError, bad);
    assert.throws(() => listen(bad), TypeError, bad);
  }
  // A bare name is \\.\pipe\NAME here: nobody serves this one.
  await assert.rejects(connect("winpipe-nobody-serves-this"), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.code, "ERROR_FILE_NOT_FOUND");
    assert.equal(e.path, String.raw`\\.\pipe\winpipe-nobody-serves-this`);
    return true;
  });
  await assert.rejects(connect(String.raw`\\.\pipe\x`, { access: "sideways" as never }), TypeError);
  assert.throws(() => listen(String.raw`\\host\pipe\x`), TypeError);
  assert.throws(() => listen(uniqueName("bad"), { maxInstances: 0 }), TypeError);
  assert.throws(() => listen(uniqueName("bad"), { maxInstances: 256 }), TypeError);
  assert.throws(() => listen(uniqueName("bad"), { security: "" }), TypeError);
  assert.throws(() => listen(uniqueName("bad"), { security: "not sddl" }), PipeError);
});

test("100 concurrent connections, each moving 1 MiB both ways: no cross-talk, no leaked handle", async () => {
  const name = uniqueName("hundred");
  const before = await settledSnapshot();
  const { server } = echoServer(name);
  const size = MiB;
  const clients = await Promise.all(
    Array.from({ length: 100 }, () => connect(name, { timeout: 30_000 })),
  );
  await within(
    120_000,
    Promise.all(clients.map(async (conn, i) => {
      // Each connection's bytes are tagged with its index, so cross-talk would show.
      const chunk = new Uint8Array(64 * 1024).fill(i);
      const reading = readAll(conn.readable, size);
      for (let p = 0; p < size; p += chunk.byteLength) {
        if (!conn.writer!.write(chunk)) await conn.writer!.flush();
      }
      const echoed = await reading;
      assert.equal(echoed.byteLength, size);
      assert.ok(echoed.every((b) => b === i), `connection ${i} got another's bytes`);
      await conn.close();
    })),
    "100 connections",
  );
  await server.close();
  await assertHandlesBack(before, "after 100 connections");
});

/** Impersonates the client of a server connection on this thread; returns the level, reverted. */
async function impersonationLevel(): Promise<number> {
  const { client, conn, close } = await pair("imp");
  client.writer!.write("x"); // the server must read before it may impersonate
  const r = conn.readable.getReader();
  await r.read();
  r.releaseLock();
  const { kernel32, advapi32 } = native();
  const a = advapi32();
  const TOKEN_QUERY = 0x8;
  const TokenImpersonationLevel = 9;
  try {
    assert.equal(a.ImpersonateNamedPipeClient(conn.handle!), 1, "ImpersonateNamedPipeClient");
    try {
      const token = new BigUint64Array(1);
      assert.equal(a.OpenThreadToken(kernel32.GetCurrentThread(), TOKEN_QUERY, 1, token), 1);
      const level = new Uint32Array(1);
      try {
        assert.equal(
          a.GetTokenInformation(token[0], TokenImpersonationLevel, level, 4, new Uint32Array(1)),
          1,
        );
      } finally {
        kernel32.CloseHandle(token[0]);
      }
      return level[0];
    } finally {
      assert.equal(a.RevertToSelf(), 1);
    }
  } finally {
    await close();
  }
}

test("the server can impersonate the client, and RevertToSelf restores the thread", async () => {
  const level = await impersonationLevel();
  assert.ok(level >= 1 && level <= 3, `an impersonation level: ${level}`);
  const { kernel32, advapi32 } = native();
  const token = new BigUint64Array(1);
  assert.equal(advapi32().OpenThreadToken(kernel32.GetCurrentThread(), 0x8, 1, token), 0);
  assert.equal(kernel32.GetLastError(), 1008, "ERROR_NO_TOKEN: the thread is itself again");
});

test(
  "the client's SECURITY_IDENTIFICATION limits the server to SecurityIdentification",
  wineLacks(
    "ImpersonateNamedPipeClient gives SecurityImpersonation (2) whatever the client's SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION (measured under Wine 10)",
  ),
  async () => {
    const SecurityIdentification = 1;
    assert.equal(await impersonationLevel(), SecurityIdentification);
  },
);

test("with maxInstances all connected, the server listens again once a connection closes", async () => {
  const name = uniqueName("maxinst");
  const server = listen(name, { maxInstances: 1 });
  const first = server.accept();
  const a = await connect(name);
  const conn1 = (await first)!;
  const secondAccept = server.accept();
  const b = connect(name, { timeout: 5_000 }); // busy until conn1 closes
  await sleep(100);
  await Promise.all([a.close(), conn1.close()]);
  const client2 = await within(5_000, b);
  const conn2 = (await within(5_000, secondAccept))!;
  client2.writer!.write("second");
  const r = conn2.readable.getReader();
  assert.equal(new TextDecoder().decode((await r.read()).value), "second");
  r.releaseLock();
  await Promise.all([client2.close(), conn2.close()]);
  await server.close();
});

/** The pipe's NamedPipeType, read back from the handle (FilePipeLocalInformation). */
function namedPipeType(handle: bigint): number {
  const info = pipeLocalInformation(handle);
  assert.ok(info, "NtQueryInformationFile(FilePipeLocalInformation)");
  return info.namedPipeType;
}

async function pipeTypeOf(options: Parameters<typeof listen>[1]): Promise<number> {
  const { conn, close } = await pair("ptype", {
    server: options,
    client: { messageMode: options?.messageMode },
  });
  try {
    return namedPipeType(conn.handle!);
  } finally {
    await close();
  }
}

test("the pipe's configuration reads back from the handle (NamedPipeType's message bit)", async () => {
  const FILE_PIPE_MESSAGE_TYPE = 1;
  assert.equal((await pipeTypeOf({ messageMode: true })) & FILE_PIPE_MESSAGE_TYPE, 1);
  assert.equal((await pipeTypeOf({ messageMode: false })) & FILE_PIPE_MESSAGE_TYPE, 0);
});

test(
  "PIPE_REJECT_REMOTE_CLIENTS is really set: read back from the handle",
  wineLacks(
    "FilePipeLocalInformation reports NamedPipeType 0 whether or not the flag was given (measured under Wine 10)",
  ),
  async () => {
    const FILE_PIPE_REJECT_REMOTE_CLIENTS = 2;
    assert.notEqual((await pipeTypeOf({})) & FILE_PIPE_REJECT_REMOTE_CLIENTS, 0);
    assert.equal(
      (await pipeTypeOf({ rejectRemoteClients: false })) & FILE_PIPE_REJECT_REMOTE_CLIENTS,
      0,
    );
  },
);

test("an SDDL string is taken as the DACL", async () => {
  // This user only, read and write: no SYSTEM, no Administrators.
  const sid = currentUserSid();
  const { conn, close } = await pair("sddl", { server: { security: `D:P(A;;GRGW;;;${sid})` } });
  const sddl = daclOf(conn.handle!);
  const trustees = [...sddl.matchAll(/\(([^)]*)\)/g)].map((m) => m[1].split(";")[5]);
  assert.deepEqual(trustees, [sid], sddl);
  await close();
});

test('against a one-way (inbound) server end, access "duplex" falls back to write-only', async () => {
  const { ServerEnd } = await import("./server_end.ts");
  const name = uniqueName("oneway");
  const end = ServerEnd.create(name); // PIPE_ACCESS_INBOUND: the client may only write
  const connected = end.connect();
  const conn = await connect(name);
  await connected;
  assert.equal(conn.reader, null);
  assert.ok(conn.writer);
  conn.writer.write("one way");
  assert.equal(new TextDecoder().decode((await end.read())!), "one way");
  const done = await conn.readable.getReader().read();
  assert.equal(done.done, true, "no read access: the readable is already closed");
  await conn.close();
  await end.close();
});

test("reads follow the consumer: no ReadFile without demand, so the peer's writer backs up", async () => {
  const { client, conn, close } = await pair("demand", {
    server: { outBufferSize: 4096, inBufferSize: 4096 },
    client: { highWaterMark: 64 * 1024 },
  });
  // The client writes far more than the pipe holds; the server's consumer has not asked yet.
  for (let p = 0; p < 2 * MiB; p += 65536) client.writer!.write(pattern.at(p, 65536));
  await sleep(300);
  assert.equal(conn.reader!.bytesRead, 0, "no read without a consumer's demand");
  assert.ok(
    client.writer!.bytesToWrite > 1.5 * MiB,
    `backpressure: ${client.writer!.bytesToWrite}`,
  );
  // Now the consumer reads: everything arrives, in order.
  const got = await within(30_000, readAll(conn.readable, 2 * MiB));
  assert.equal(got.byteLength, 2 * MiB);
  pattern.verifier().check(got);
  await within(10_000, client.writer!.flush());
  await close();
});

test("conn.read(p): a small p takes a large write in parts, calls made at once are served in order, and the stream is then locked", async () => {
  const { client, conn, close } = await pair("conn-readp");
  const data = new Uint8Array(3 * MiB + 17);
  for (let o = 0; o < data.byteLength; o += Pattern.P) {
    data.set(pattern.at(o, Math.min(Pattern.P, data.byteLength - o)), o);
  }
  client.writer!.write(data);
  // Four calls at once, of odd sizes: each copies into its own p, in the order they were made.
  const out = await readInOddParts((p) => conn.read(p), data.byteLength, (p) => within(10_000, p));
  pattern.verifier().check(out);
  assert.throws(() => conn.readable.getReader(), TypeError, "read(p) holds the stream's lock");
  await close();
  assert.equal(await conn.read(new Uint8Array(8)), null);
});

test("conn.read(p) on a message pipe says to read readable; without read access it is null", async () => {
  const { conn, close } = await pair("conn-readp-msg", {
    server: { messageMode: true },
    client: { messageMode: true },
  });
  await assert.rejects(conn.read(new Uint8Array(8)), /message pipe.*readable/);
  await close();
  const oneWay = await pair("conn-readp-w", { client: { access: "write" } });
  assert.equal(await within(5_000, oneWay.client.read(new Uint8Array(8))), null);
  await oneWay.close();
});

test("conn.write(p) and conn.read(p) as Deno.Conn's: write(p) to a peer that stops reading ends when close() gives up; read(p) ends with null", async () => {
  const { server, client, conn } = await pair("conn-rw", {
    client: { highWaterMark: 64 * 1024 },
  });
  assert.equal(await client.write(new TextEncoder().encode("hello")), 5);
  const buf = new Uint8Array(16);
  const n = await conn.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "hello");
  // The server end stops reading: a write(p) is left waiting for room.
  const chunk = new Uint8Array(64 * 1024);
  let stalled: Promise<number> | undefined;
  for (let i = 0; i < 1000 && !stalled; i++) {
    const w = client.write(chunk);
    const settled = await Promise.race([w.then(() => true), sleep(200).then(() => false)]);
    if (!settled) stalled = w;
  }
  assert.ok(stalled, "the pipe never pushed back");
  const outcome = stalled.then(() => "resolved", (e: unknown) => e);
  await assert.rejects(
    client.close({ timeout: 200 }),
    (e: unknown) => e instanceof PipeError && e.code === "ERROR_TIMEOUT",
  );
  const e = await within(5_000, outcome, "write(p) after close() gave up");
  assert.ok(e instanceof PipeError, String(e));
  // The client has gone: the server end reads what was delivered, then null.
  while ((await conn.read(new Uint8Array(64 * 1024))) !== null);
  await conn.close();
  await server.close(); // the client's close() rejected above, as it should
});

test("a messageMode client on a byte pipe is refused with words that say why", async () => {
  const name = uniqueName("byte-for-message");
  const server = listen(name);
  try {
    await assert.rejects(connect(name, { messageMode: true }), (e: unknown) => {
      assert.ok(e instanceof PipeError, String(e));
      assert.equal(e.code, "ERROR_INVALID_PARAMETER");
      assert.match(e.message, /messageMode needs a message pipe, and the server made a byte pipe/);
      return true;
    });
  } finally {
    await server.close();
  }
});
