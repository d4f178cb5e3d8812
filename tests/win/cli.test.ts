// `winpipe send` against a real pipe: the bytes, the progress bar, and the exit codes.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { main, Output } from "../../cli.ts";
import { type PipeConnection, PipeError } from "../../mod.ts";
import { run, scriptCommand } from "./child.ts";
import { Pattern, ServerEnd, uniqueName, within } from "./server_end.ts";

/** `cli.ts` as the running runtime runs it (Deno with the permissions named). */
function cliCommand(denoPermissions: string[]): [string, string[]] {
  return scriptCommand("cli.ts", denoPermissions);
}

const isFileNotFound = (e: unknown) => e instanceof PipeError && e.code === "ERROR_FILE_NOT_FOUND";

function ttyIo(stdin: AsyncIterable<Uint8Array> = (async function*() {})()) {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    io: {
      stdout: {
        write: (
          s: string | Uint8Array,
        ) => (out.stdout += typeof s === "string" ? s : new TextDecoder().decode(s)),
      },
      stderr: { write: (s: string) => (out.stderr += s), isTTY: true, columns: 100 },
      stdin,
    },
  };
}

test("send FILE delivers the file byte-exact and draws a progress bar on a TTY", async () => {
  const dir = mkdtempSync(join(tmpdir(), "winpipe-cli-"));
  const file = join(dir, "data.bin");
  const size = 8 * 1024 * 1024 + 123;
  const pattern = new Pattern(3);
  const data = new Uint8Array(size);
  for (let p = 0; p < size; p += Pattern.P) {
    data.set(pattern.at(p, Math.min(Pattern.P, size - p)), p);
  }
  writeFileSync(file, data);
  const name = uniqueName("cli");
  const server = ServerEnd.create(name);
  const connected = server.connect();
  const verify = pattern.verifier();
  const reading = connected.then(() => server.drain((b) => verify.check(b)));
  const c = ttyIo();
  try {
    assert.equal(await within(30_000, main(["send", name, file], c.io)), 0, c.out.stderr);
    assert.equal(await within(30_000, reading), size);
    assert.match(c.out.stderr, /\r\[#+\] 100%  8\.0 MiB \/ 8\.0 MiB  [\d.]+ [KMG]iB\/s/);
    assert.ok(c.out.stderr.endsWith("\x1b[K\n"), "a final line, ended");
    for (const line of c.out.stderr.replaceAll("\x1b[K", "").split(/[\r\n]/)) {
      assert.ok(line.length <= 99, `wider than 100 columns: ${line}`);
    }
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("send reads standard input when no file is given; --quiet draws nothing", async () => {
  const name = uniqueName("cli-stdin");
  const server = ServerEnd.create(name);
  const connected = server.connect();
  const stdin = (async function*() {
    for (let i = 0; i < 100; i++) yield new TextEncoder().encode(`line ${i}\n`);
  })();
  const c = ttyIo(stdin);
  const reading = connected.then(async () => {
    let text = "";
    await server.drain((b) => void (text += new TextDecoder().decode(b)));
    return text;
  });
  assert.equal(await within(30_000, main(["send", "--quiet", name], c.io)), 0);
  const text = await within(30_000, reading);
  assert.equal(text.split("\n").length, 101);
  assert.ok(text.startsWith("line 0\nline 1\n") && text.endsWith("line 99\n"));
  assert.equal(c.out.stderr, "");
  await server.close();
});

test("send draws a final line on a TTY even when stdin was empty", async () => {
  const name = uniqueName("cli-empty");
  const server = ServerEnd.create(name);
  const connected = server.connect();
  const reading = connected.then(() => server.drain());
  const c = ttyIo();
  try {
    assert.equal(await within(30_000, main(["send", name], c.io)), 0, c.out.stderr);
    assert.equal(await within(30_000, reading), 0);
    assert.equal(c.out.stderr, "\r0 B  0 B/s\x1b[K\n");
  } finally {
    await server.close();
  }
});

test("recv and relay draw nothing with --quiet, or when stderr is not a terminal", async () => {
  const { connect, listen } = await import("../../mod.ts");
  for (const [quiet, isTTY] of [[true, true], [false, false]]) {
    const recvName = uniqueName("recv-quiet");
    const r = ttyIo();
    r.io.stderr.isTTY = isTTY;
    const receiving = main(["recv", ...(quiet ? ["--quiet"] : []), recvName], r.io);
    const client = await connect(recvName, { wait: true, timeout: 10_000 });
    client.writer!.write("some bytes");
    await client.close();
    assert.equal(await within(30_000, receiving), 0);
    assert.equal(r.out.stdout, "some bytes");
    assert.equal(r.out.stderr, "", `recv, quiet ${quiet}, isTTY ${isTTY}`);

    const relayName = uniqueName("relay-quiet");
    const server = listen(relayName);
    const serving = server.accept().then(async (conn) => {
      conn!.writer!.write("a reply");
      await conn!.close();
    });
    const l = ttyIo();
    l.io.stderr.isTTY = isTTY;
    assert.equal(
      await within(30_000, main(["relay", ...(quiet ? ["--quiet"] : []), relayName], l.io)),
      0,
    );
    await serving;
    await server.close();
    assert.equal(l.out.stdout, "a reply");
    assert.equal(l.out.stderr, "", `relay, quiet ${quiet}, isTTY ${isTTY}`);
  }
});

test("send to a missing pipe exits 1 and names the Win32 error", async () => {
  const c = ttyIo();
  assert.equal(await main(["send", uniqueName("nobody"), "README.md"], c.io), 1);
  assert.match(c.out.stderr, /^winpipe: CreateFileW failed on .*: ERROR_FILE_NOT_FOUND \(2\): /);
});

test("send of a missing file exits 1 with the file error, before it opens the pipe", async () => {
  const { PipeWriter } = await import("../../mod.ts");
  const name = uniqueName("cli-nofile");
  const server = ServerEnd.create(name); // one instance
  const c = ttyIo();
  try {
    assert.equal(await main(["send", name, "no/such/file.bin"], c.io), 1);
    assert.match(c.out.stderr, /^winpipe: ENOENT: no such file or directory/);
    // The instance was never used: a client still gets it (a used one would be busy).
    const writer = await PipeWriter.open(name, { timeout: 2_000 });
    await within(10_000, server.connect());
    await writer.close();
  } finally {
    await server.close();
  }
});

test("recv listens, takes one client, and writes its bytes to a file", async () => {
  const { connect } = await import("../../mod.ts");
  const { readFileSync } = await import("node:fs");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-recv-"));
  const out = join(dir, "got.bin");
  const name = uniqueName("recv");
  const c = ttyIo();
  const receiving = main(["recv", name, out], c.io);
  const conn = await connect(name, { wait: true, timeout: 10_000 });
  const pattern = new Pattern(5);
  for (let p = 0; p < 3_000_000; p += 1_000_000) conn.writer!.write(pattern.at(p, 1_000_000));
  await conn.close();
  assert.equal(await within(30_000, receiving), 0, c.out.stderr);
  const got = new Uint8Array(readFileSync(out));
  assert.equal(got.byteLength, 3_000_000);
  pattern.verifier().check(got);
  assert.match(c.out.stderr, /\r2\.9 MiB {2}[\d.]+ [KMG]iB\/s/);
  rmSync(dir, { recursive: true, force: true });
});

test("recv into a file it cannot open exits 1 and leaves nothing listening", async () => {
  const { connect } = await import("../../mod.ts");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-recv-"));
  const name = uniqueName("recv-nodir");
  const c = ttyIo();
  try {
    const code = await within(30_000, main(["recv", name, join(dir, "no", "such", "x.bin")], c.io));
    assert.equal(code, 1);
    assert.match(c.out.stderr, /^winpipe: ENOENT: no such file or directory/);
    await assert.rejects(connect(name, { timeout: 0 }), isFileNotFound, "a server still listens");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an error in recv's loop closes the connection and the server, and exits 1", async () => {
  const { connect } = await import("../../mod.ts");
  const name = uniqueName("recv-epipe");
  const c = ttyIo();
  c.io.stdout.write = () => {
    throw Object.assign(new Error("the reader of stdout went away"), { code: "EPIPE" });
  };
  const receiving = main(["recv", name], c.io);
  const client = await connect(name, { wait: true, timeout: 10_000 });
  try {
    client.writer!.write("bytes that stdout cannot take");
    // The server side closes its end: our reads end.
    const end = await within(10_000, client.readable.getReader().read(), "the client's read");
    assert.equal(end.done, true);
    assert.equal(await within(10_000, receiving), 1);
    assert.match(c.out.stderr, /\nwinpipe: EPIPE: the reader of stdout went away\n$/);
    await assert.rejects(connect(name, { timeout: 0 }), isFileNotFound, "a server still listens");
  } finally {
    await client.close().catch(() => {});
  }
});

test("recv ends when stdout fails while it waits for drain, and exits 1", async () => {
  const { connect } = await import("../../mod.ts");
  const { EventEmitter } = await import("node:events");
  const name = uniqueName("recv-stdout-error");
  const c = ttyIo();
  // A stdout that is full (write returns false), then fails, and never drains.
  const stdout = Object.assign(new EventEmitter(), {
    write: () => {
      setTimeout(
        () => stdout.emit("error", Object.assign(new Error("stdout broke"), { code: "EPIPE" })),
        20,
      );
      return false;
    },
  });
  const io = { ...c.io, stdout };
  const receiving = main(["recv", name], io);
  const client = await connect(name, { wait: true, timeout: 10_000 });
  try {
    client.writer!.write("bytes that stdout cannot take");
    assert.equal(await within(10_000, receiving, "recv"), 1);
    assert.match(c.out.stderr, /winpipe: EPIPE: stdout broke\n$/);
    assert.equal(stdout.listenerCount("drain"), 0, "no listener left behind");
  } finally {
    await client.close().catch(() => {});
  }
});

test("recv to a full stdout: each wait for drain removes its listeners, no MaxListeners warning", async () => {
  const { connect } = await import("../../mod.ts");
  const { EventEmitter } = await import("node:events");
  const warnings: unknown[] = [];
  const onWarning = (w: unknown) => warnings.push(w);
  process.on("warning", onWarning);
  const name = uniqueName("recv-backpressure");
  // process.stdout as the command gets it (an Output over the stream): every write fills it, and
  // it drains a little later.
  let waits = 0;
  const got: Uint8Array[] = [];
  const stream = Object.assign(new EventEmitter(), {
    write(chunk: string | Uint8Array, callback: () => void) {
      got.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk.slice());
      callback();
      setTimeout(() => (waits++, stream.emit("drain")), 1);
      return false;
    },
  });
  const c = ttyIo();
  const receiving = main(["recv", "--quiet", name], { ...c.io, stdout: new Output(stream) });
  const conn = await connect(name, { wait: true, timeout: 10_000 });
  try {
    const pattern = new Pattern(11);
    for (let p = 0; p < 2_000_000; p += 10_000) {
      conn.writer!.write(pattern.at(p, 10_000));
      await conn.writer!.flush(); // one read, one stdout write, one wait for drain each
    }
    await conn.close();
    assert.equal(await within(60_000, receiving, "recv"), 0, c.out.stderr);
    const bytes = got.reduce((n, b) => n + b.byteLength, 0);
    assert.equal(bytes, 2_000_000);
    const all = new Uint8Array(bytes);
    got.reduce((o, b) => (all.set(b, o), o + b.byteLength), 0);
    new Pattern(11).verifier().check(all);
    assert.ok(waits > 10, `${waits} waits for drain`);
    for (const event of ["drain", "error", "close"]) {
      assert.equal(stream.listenerCount(event), 0, `${event} listeners left`);
    }
    await new Promise((r) => setTimeout(r, 50)); // a warning is emitted on a later tick
    assert.deepEqual(warnings, []);
  } finally {
    process.off("warning", onWarning);
    await conn.close().catch(() => {});
  }
});

test("a TypeError thrown while a command runs exits 1 as an internal error, with its stack", async () => {
  const { connect, listen } = await import("../../mod.ts");
  const bug = () => new TypeError("a bug: chunk.foo is not a function");
  /** A stdin that gives one chunk, then fails as a bug would. */
  const buggyStdin = () =>
    (async function*() {
      yield new TextEncoder().encode("first\n");
      throw bug();
    })();
  const expectInternal = (code: number, stderr: string, what: string) => {
    assert.equal(code, 1, `${what}: ${stderr}`);
    assert.match(
      stderr,
      /winpipe: internal error: TypeError: a bug: chunk\.foo is not a function\n\s+at /,
      what,
    );
    assert.doesNotMatch(stderr, /usage:/, what);
  };

  // send: stdin fails mid-run.
  const sendName = uniqueName("cli-bug-send");
  const sendServer = ServerEnd.create(sendName);
  const sendConnected = sendServer.connect();
  const s = ttyIo(buggyStdin());
  try {
    const draining = sendConnected.then(() => sendServer.drain());
    draining.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
    expectInternal(await within(30_000, main(["send", sendName], s.io)), s.out.stderr, "send");
    await within(10_000, draining, "the send server");
  } finally {
    await sendServer.close();
  }

  // relay: stdin fails mid-run.
  const relayName = uniqueName("cli-bug-relay");
  const server = listen(relayName);
  const serving = server.accept();
  const l = ttyIo(buggyStdin());
  try {
    expectInternal(await within(30_000, main(["relay", relayName], l.io)), l.out.stderr, "relay");
    await (await within(10_000, serving, "the relay server"))?.close();
  } finally {
    await server.close();
  }

  // recv: stdout fails with a TypeError.
  const recvName = uniqueName("cli-bug-recv");
  const r = ttyIo();
  r.io.stdout.write = () => {
    throw bug();
  };
  const receiving = main(["recv", recvName], r.io);
  const client = await connect(recvName, { wait: true, timeout: 10_000 });
  try {
    client.writer!.write("bytes");
    expectInternal(await within(30_000, receiving, "recv"), r.out.stderr, "recv");
  } finally {
    await client.close().catch(() => {});
  }
});

test("recv as a process exits at once, non-zero, when it cannot open its file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "winpipe-recv-process-"));
  try {
    // deno.exe without --allow-write: the file is refused.
    const denied = await run(
      process.env.WINPIPE_DENO ?? process.execPath,
      [
        "run",
        "--allow-ffi",
        "--allow-read",
        "cli.ts",
        "recv",
        uniqueName("recv-denied"),
        join(dir, "out.bin"),
      ],
      dir,
      20_000,
    );
    assert.equal(denied.timedOut, false, `still running after 10 s: ${denied.stderr}`);
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(denied.stderr, /^winpipe: .*--allow-write/m);

    // A missing directory, in this runtime.
    const [exe, args] = cliCommand(["--allow-ffi", "--allow-read", "--allow-write"]);
    const missing = await run(
      exe,
      [
        ...args,
        "recv",
        uniqueName("recv-nodir"),
        join(dir, "no", "such", "out.bin"),
      ],
      dir,
      20_000,
    );
    assert.equal(missing.timedOut, false, `still running after 10 s: ${missing.stderr}`);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /^winpipe: ENOENT: no such file or directory/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

/** Reads from a connection until a newline; the line, with it. */
async function readLine(conn: PipeConnection): Promise<string> {
  const r = conn.readable.getReader();
  let line = "";
  while (!line.endsWith("\n")) line += decode((await r.read()).value);
  r.releaseLock();
  return line;
}

/** A server on NAME that reads one line from its first client, answers "pong: LINE", and ends. */
async function pongServer(name: string) {
  const { listen } = await import("../../mod.ts");
  const server = listen(name);
  const serving = (async () => {
    const conn = (await server.accept())!;
    const request = await readLine(conn);
    conn.writer!.write(`pong: ${request}`);
    await conn.close(); // the reply, then the end: a relay exits
  })();
  return { server, serving };
}

test("relay ends when the pipe ends, though its stdin never does", async () => {
  const name = uniqueName("relay-open-stdin");
  const { server, serving } = await pongServer(name);
  const c = ttyIo((async function*() {
    yield encode("ping\n");
    await new Promise(() => {}); // stdin stays open, and never yields again
  })());
  try {
    // The relay's own end first: a relay that waits for stdin times out here.
    assert.equal(await within(10_000, main(["relay", name], c.io), "relay"), 0, c.out.stderr);
    assert.equal(c.out.stdout, "pong: ping\n");
    await within(10_000, serving, "the server");
  } finally {
    await server.close();
  }
});

test("relay --exit-on-stdin-eof delivers the replies already in the pipe", async () => {
  const { listen } = await import("../../mod.ts");
  const name = uniqueName("relay-stdin-eof");
  const server = listen(name);
  const reply = new Pattern(7).at(0, 40 * 1024); // fits the pipe's 64 KiB buffer
  // stdout takes the reply's first piece, then holds the relay's read loop back (write() returns
  // false) until stdin has ended: the rest of the reply is in the pipe when stdin ends.
  const out: Uint8Array[] = [];
  let stdinEnded = false;
  let onFirstOut!: () => void;
  const firstOut = new Promise<void>((r) => (onFirstOut = r));
  const drainListeners: (() => void)[] = [];
  const stdout = {
    write(b: string | Uint8Array) {
      out.push(typeof b === "string" ? encode(b) : b.slice());
      onFirstOut();
      return stdinEnded;
    },
    once(_: "drain", listener: () => void) {
      drainListeners.push(listener);
    },
  };
  let onReplied!: () => void;
  const replied = new Promise<void>((r) => (onReplied = r));
  const serving = (async () => {
    const conn = (await server.accept())!;
    await readLine(conn); // the request, read before the reply
    conn.writer!.write(reply.subarray(0, 4096));
    await firstOut;
    conn.writer!.write(reply.subarray(4096));
    await conn.writer!.flush(); // the whole reply is in the pipe
    onReplied();
    return conn; // and stays open
  })();
  const stdin = (async function*() {
    yield encode("ping\n");
    await replied;
    stdinEnded = true;
    setTimeout(() => drainListeners.splice(0).forEach((l) => l()), 20);
  })();
  const stderr = { write: () => {}, isTTY: false };
  try {
    const relaying = main(["relay", "--exit-on-stdin-eof", name], { stdout, stderr, stdin });
    assert.equal(await within(10_000, relaying, "relay"), 0);
    const got = new Uint8Array(out.reduce((n, b) => n + b.byteLength, 0));
    out.reduce((o, b) => (got.set(b, o), o + b.byteLength), 0);
    assert.equal(got.byteLength, reply.byteLength, "bytes on stdout");
    new Pattern(7).verifier().check(got);
    await (await within(10_000, serving, "the server")).close();
  } finally {
    await server.close();
  }
});

test("relay as a process exits when the pipe ends, though its stdin stays open", async () => {
  const { listen } = await import("../../mod.ts");
  const node = process.env.WINPIPE_NODE ?? "node";
  const dir = mkdtempSync(join(tmpdir(), "winpipe-relay-process-"));
  const name = uniqueName("relay-process");
  const server = listen(name);
  const serving = server.accept().then(async (conn) => {
    conn!.writer!.write("hello from the server\n");
    await conn!.close(); // the reply, then the end
  });
  try {
    const result = join(dir, "result.json");
    const [exe, args] = cliCommand(["--allow-ffi", "--allow-read"]);
    const peer = await run(
      node,
      [
        join("tests", "win", "peers", "open_stdin.cjs"),
        result,
        "10000",
        exe,
        ...args,
        "relay",
        "--wait",
        name,
      ],
      dir,
      30_000,
    );
    assert.equal(peer.code, 0, `${peer.stdout}${peer.stderr}`);
    const relay = JSON.parse(readFileSync(result, "utf8"));
    const stderr = readFileSync(`${result}.stderr`, "utf8");
    assert.equal(relay.timedOut, false, `relay still running after 10 s: ${stderr}`);
    assert.equal(relay.code, 0, stderr);
    assert.equal(readFileSync(`${result}.stdout`, "utf8"), "hello from the server\n");
    await within(10_000, serving, "the server");
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("relay: stdin to the pipe, the pipe to stdout, until the server closes", async () => {
  const name = uniqueName("relay");
  const { server, serving } = await pongServer(name);
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: {
      write: (
        s: string | Uint8Array,
      ) => (stdout += typeof s === "string" ? s : new TextDecoder().decode(s)),
    },
    stderr: { write: (s: string) => (stderr += s), isTTY: true },
    stdin: (async function*() {
      yield new TextEncoder().encode("ping\n");
    })(),
  };
  assert.equal(await within(30_000, main(["relay", name], io)), 0);
  await serving;
  assert.equal(stdout, "pong: ping\n");
  assert.match(stderr, /\r11 B {2}[\d.]+ [KMG]?i?B\/s/, "progress on a TTY");
  await server.close();
});

test("node.exe running the built command says that winpipe runs on Deno or Bun, and exits 1", async () => {
  // Node 24 has import.meta.main, which Linux's older Node (tests/cli.test.ts) lacks.
  const built = join("dist", "cli.js");
  assert.ok(existsSync(built), "dist/cli.js is missing: npm run build");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-node-"));
  try {
    const node = await run(process.env.WINPIPE_NODE ?? "node", [built, "send", "x"], dir, 30_000);
    assert.equal(node.timedOut, false);
    assert.equal(node.code, 1, node.stderr);
    assert.match(node.stderr, /^winpipe runs on Deno or Bun, not Node/);
    assert.match(node.stderr, /bunx winpipe/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
