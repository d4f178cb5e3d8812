// Unix sockets, natively on Linux, in Deno and in Bun: names, the secure defaults, peers that are
// not winpipe (Node's net, Python's socket, socat), and leaks. The squatting case runs a child as
// another user with setpriv, which needs root (CI runs as root; elsewhere it says so and skips).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { isWindows, runtimeName } from "../ffi/runtime.ts";
import { connect, listen, PipeConnection, PipeError, pipePath, PipeWriter } from "../mod.ts";
import { checkRefs } from "./peers/refs_check.ts";
import { readInOddParts } from "./read_parts.ts";
import { scriptCommand, start } from "./win/child.ts";

const skip = isWindows() ? "this is Windows: tests/win covers named pipes" : false;
// macOS: /tmp, not $TMPDIR (/var/folders/…/T/, about 50 bytes), so that the sockets' paths stay
// well inside macOS's 104-byte sun_path.
const mac = process.platform === "darwin";
const OS = mac ? "macOS" : "Linux";
/** sun_path's limit in bytes, without the NUL: 107 on Linux, 103 on macOS. */
const MAX_PATH = mac ? 103 : 107;
const root = isWindows() ? "" : fs.mkdtempSync(join(mac ? "/tmp" : tmpdir(), "winpipe-unix-"));
if (!isWindows()) fs.chmodSync(root, 0o1777); // a shared temp dir, as /tmp is
// Bare names resolve under $TMPDIR/winpipe-UID here, in a directory of this suite's own.
const savedTmp = process.env.TMPDIR;
const savedXdg = process.env.XDG_RUNTIME_DIR;
if (!isWindows()) {
  process.env.TMPDIR = root;
  delete process.env.XDG_RUNTIME_DIR;
}
after(() => {
  if (isWindows()) return;
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  if (savedXdg !== undefined) process.env.XDG_RUNTIME_DIR = savedXdg;
  fs.rmSync(root, { recursive: true, force: true });
});

let counter = 0;
const unique = (what: string) => `${what}-${process.pid}-${++counter}`;
const uid = () => process.getuid!();

/** Deterministic bytes: the same seed gives the same stream on both ends. */
function bytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

/** Random chunk sizes (1 B to 256 KiB) over `data`. */
function* chunks(data: Uint8Array, seed: number): Generator<Uint8Array> {
  let x = seed;
  for (let i = 0; i < data.byteLength;) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = 1 + (x % (256 * 1024));
    yield data.subarray(i, i + n);
    i += n;
  }
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function hashStream(readable: ReadableStream<Uint8Array>): Promise<[string, number]> {
  const h = createHash("sha256");
  let n = 0;
  const reader = readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    h.update(r.value);
    n += r.value.byteLength;
  }
  return [h.digest("hex"), n];
}

/** Runs a child to completion; resolves with its stdout, rejects with its stderr. */
function run(
  cmd: string,
  args: string[],
  input?: Uint8Array,
  env?: Record<string, string>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on(
      "close",
      (code) => code === 0 ? resolve(out) : reject(new Error(`${cmd}: ${code}: ${err}`)),
    );
    if (input) child.stdin.end(input);
    else child.stdin.end();
  });
}

const MiB = 1024 * 1024;
const BIG = 64 * MiB;

test(
  "a bare name resolves to a private directory; full paths pass; the other OS's form and bad names are refused",
  { skip },
  () => {
    const p = pipePath("my-app");
    assert.equal(p, `${root}/winpipe-${uid()}/my-app`);
    assert.equal(pipePath("/run/x.sock"), "/run/x.sock");
    assert.equal(pipePath("./x.sock"), "./x.sock");
    assert.throws(
      () => pipePath(String.raw`\\.\pipe\x`),
      new RegExp(`is a Windows pipe name, and this is ${OS}`),
    );
    assert.throws(
      () => pipePath("/" + "x".repeat(MAX_PATH)),
      new RegExp(`is ${MAX_PATH + 1} bytes as UTF-8; ${OS} allows ${MAX_PATH}`),
    );
    assert.equal(pipePath("/" + "x".repeat(MAX_PATH - 1)).length, MAX_PATH);
    // The limit is in bytes: 36 three-byte characters are 109 bytes with the slash.
    assert.throws(() => pipePath("/" + "€".repeat(36)), /is 109 bytes as UTF-8/);
    if (mac) {
      assert.throws(() => pipePath("@abstract", { abstract: true }), /exist only on Linux/);
    } else {
      assert.throws(() => pipePath("@abstract"), /pass \{ abstract: true \}/);
      assert.equal(pipePath("@abstract", { abstract: true }), "@abstract");
    }
    // XDG_RUNTIME_DIR is used when it is private, and passed over when it is not.
    const xdg = fs.mkdtempSync(join(root, "xdg-"));
    try {
      process.env.XDG_RUNTIME_DIR = xdg;
      fs.chmodSync(xdg, 0o700);
      assert.equal(pipePath("my-app"), `${xdg}/winpipe/my-app`);
      fs.chmodSync(xdg, 0o755);
      assert.equal(pipePath("my-app"), p);
    } finally {
      delete process.env.XDG_RUNTIME_DIR;
    }
  },
);

test("the README's client and server, with a bare name, natively", { skip }, async () => {
  const name = unique("readme");
  const server = listen(name);
  const serving = (async () => {
    for await (const conn of server) {
      (async () => {
        await conn.readable.pipeTo(conn.writable); // echo, then close
      })().catch(console.error);
    }
  })();
  const conn = await connect(name);
  const w = conn.writable.getWriter();
  await w.write(new TextEncoder().encode("ping"));
  const { value } = await conn.readable.getReader().read();
  assert.equal(new TextDecoder().decode(value), "ping");
  assert.equal(conn.path, pipePath(name));
  assert.equal(server.path, pipePath(name));
  assert.equal(conn.peerProcessId, undefined); // the runtimes hide the descriptor
  await w.close();
  await server.close();
  await serving;
});

test("the README's portable echo runs unchanged", { skip }, async () => {
  const script = new URL("./readme/portable_echo.ts", import.meta.url).pathname;
  const args = runtimeName() === "deno" ? ["run", "-A", script] : [script];
  assert.equal((await run(process.execPath, args)).trim(), "hello, every OS");
});

test("the README's Usage examples and echo pair run natively, with their bare names", {
  skip,
}, async () => {
  // The same files tests/win/readme.test.ts runs under Windows: "my-app" and "echo" are bare
  // names, here sockets under this suite's TMPDIR.
  const dir = fs.mkdtempSync(join(root, "readme-"));
  const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 0xff);
  fs.writeFileSync(join(dir, "big.bin"), data);
  await using server = listen("my-app");
  const received: Uint8Array[] = [];
  void (async () => {
    for await (const conn of server) {
      received.push(new Uint8Array(await new Response(conn.readable).arrayBuffer()));
      await conn.close();
    }
  })();
  const snippet = async (file: string) => {
    const [exe, args] = scriptCommand(join(process.cwd(), "tests", "win", "readme", file), ["-A"]);
    const r = await start(exe, args, dir, 30_000, { cwd: dir }).exited;
    assert.equal(r.code, 0, `${file}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  await snippet("usage_write.ts");
  await snippet(runtimeName() === "bun" ? "stream_bun.ts" : "stream_deno.ts");
  assert.equal(
    new TextDecoder().decode(received[0]),
    Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(""),
  );
  assert.deepEqual(received[1], data);
  assert.equal((await snippet("echo_pair.ts")).trim(), "hello");
});

test("the private directory is made 0700 and the socket 0600; mode widens only the socket", {
  skip,
}, async () => {
  const name = unique("modes");
  await using server = listen(name);
  const dir = `${root}/winpipe-${uid()}`;
  assert.equal(fs.lstatSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.lstatSync(server.path).mode & 0o777, 0o600);
  assert.ok(fs.lstatSync(server.path).isSocket());
  const wide = join(root, unique("wide"));
  await using open = listen(wide, { mode: 0o660 });
  assert.equal(fs.lstatSync(wide).mode & 0o777, 0o660);
  assert.throws(() => listen(join(root, "x"), { mode: 0o1777 }), TypeError);
  assert.throws(
    () => listen(join(root, "x"), { security: "D:P(A;;GA;;;WD)" }),
    /for Windows named pipes/,
  );
  assert.throws(() => listen(join(root, "x"), { messageMode: true }), /for Windows named pipes/);
  await assert.rejects(
    connect(join(root, "x"), { allowRemote: true }),
    /for Windows named pipes only/,
  );
  await assert.rejects(
    PipeWriter.open(join(root, "x"), { messageMode: true }),
    /messageMode is for Windows named pipes only/,
  );
  void open;
});

test(
  "a private directory that is a symlink, open to others, or not a directory is refused, and nothing is created",
  { skip },
  async () => {
    const base = fs.mkdtempSync(join(root, "dirs-"));
    process.env.TMPDIR = base;
    const dir = `${base}/winpipe-${uid()}`;
    try {
      const target = fs.mkdtempSync(join(root, "target-"));
      fs.chmodSync(target, 0o700);
      fs.symlinkSync(target, dir);
      assert.throws(() => listen("x"), (e: unknown) => {
        assert.ok(e instanceof PipeError);
        assert.equal(e.code, "EACCES");
        assert.match(e.message, /is a symbolic link/);
        return true;
      });
      assert.deepEqual(fs.readdirSync(target), []);
      await assert.rejects(connect("x"), /is a symbolic link/);
      fs.unlinkSync(dir);
      fs.mkdirSync(dir, { mode: 0o755 });
      fs.chmodSync(dir, 0o755);
      assert.throws(() => listen("x"), /has mode 0755, open to group or others/);
      assert.deepEqual(fs.readdirSync(dir), []);
      fs.rmdirSync(dir);
      fs.writeFileSync(dir, "");
      assert.throws(() => listen("x"), /is not a directory/);
      fs.unlinkSync(dir);
      if (uid() === 0) {
        fs.mkdirSync(dir, { mode: 0o700 });
        fs.chownSync(dir, 65534, 65534);
        assert.throws(() => listen("x"), /belongs to uid 65534, not to this user/);
        assert.deepEqual(fs.readdirSync(dir), []);
      }
    } finally {
      process.env.TMPDIR = root;
    }
  },
);

test(
  "a live server is never displaced; a stale socket is replaced; a path that is not a socket is never deleted",
  { skip },
  async () => {
    const name = unique("owned");
    const first = listen(name);
    assert.throws(() => listen(name), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.code, "EADDRINUSE");
      assert.equal(e.errno, mac ? 48 : 98); // EADDRINUSE
      assert.match(e.message, /a live server is listening there/);
      return true;
    });
    // The first still serves.
    const accepted = first.accept();
    const c = await connect(name);
    await (await accepted)!.close();
    await c.close();
    await first.close();
    assert.equal(fs.existsSync(first.path), false, "the server removes its socket file");

    // Stale: bound by a process that has gone, without removing its file.
    const stale = join(root, unique("stale"));
    execFileSync("python3", [
      "-c",
      `import socket;s=socket.socket(socket.AF_UNIX);s.bind(${JSON.stringify(stale)});s.listen()`,
    ]);
    assert.ok(fs.lstatSync(stale).isSocket());
    const second = listen(stale);
    const got = second.accept();
    // Telling a stale socket from a live one takes a connect: the new server binds a moment later,
    // and wait: true covers that moment.
    const c2 = await connect(stale, { wait: true, timeout: 5_000 });
    assert.ok(await got);
    await c2.close();
    await second.close();

    const file = join(root, unique("file"));
    fs.writeFileSync(file, "keep me");
    assert.throws(() => listen(file), /is not a socket; winpipe never deletes it/);
    assert.equal(fs.readFileSync(file, "utf8"), "keep me");
  },
);

test("close() removes the server's own socket file, never a successor's", { skip }, async () => {
  const path = join(root, unique("successor"));
  const a = listen(path);
  fs.unlinkSync(path);
  execFileSync("python3", [
    "-c",
    `import socket;s=socket.socket(socket.AF_UNIX);s.bind(${JSON.stringify(path)})`,
  ]);
  const successor = fs.lstatSync(path).ino;
  await a.close();
  assert.equal(fs.lstatSync(path).ino, successor);
  fs.unlinkSync(path);
  // A server restarted on the same name serves again.
  for (let i = 0; i < 3; i++) {
    const s = listen(path);
    const got = s.accept();
    const c = await connect(path);
    await (await got)!.close();
    await c.close();
    await s.close();
  }
});

test(
  "errors on Linux and macOS carry the errno name and number, the call and the path",
  { skip },
  async () => {
    const missing = join(root, "missing");
    await assert.rejects(connect(missing), (e: unknown) => {
      assert.ok(e instanceof PipeError);
      assert.equal(e.code, "ENOENT");
      assert.equal(e.errno, 2);
      assert.equal(e.syscall, "connect");
      assert.equal(e.path, missing);
      assert.equal(
        e.message,
        `connect failed on ${missing}: ENOENT (2): No such file or directory`,
      );
      return true;
    });
    // wait: true retries until a server comes.
    const later = join(root, unique("later"));
    const pending = connect(later, { wait: true, timeout: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    await using s = listen(later);
    const c = await pending;
    await c.close();
    await assert.rejects(
      connect(join(root, "never"), { wait: true, timeout: 100 }),
      /gave up after 100 ms/,
    );
    void s;
  },
);

test("expectedOwner refuses a socket that belongs to someone else", { skip }, async () => {
  const path = join(root, unique("owner"));
  await using s = listen(path);
  const got = s.accept();
  const ok = await connect(path, { expectedOwner: uid() });
  await ok.close();
  await (await got)?.close();
  await assert.rejects(connect(path, { expectedOwner: uid() + 1 }), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.code, "EACCES");
    assert.match(e.message, new RegExp(`belongs to uid ${uid()}, not to the expected owner`));
    return true;
  });
});

test(
  "64 MiB byte-exact from Node's net, in random chunks, into a winpipe server",
  { skip },
  async () => {
    const data = bytes(7, BIG);
    const path = join(root, unique("node"));
    await using server = listen(path);
    const script = `
    const net = require("net");
    let x = 7 >>> 0, i = 0, seed = 11;
    const n = ${BIG}, data = Buffer.alloc(n);
    for (let k = 0; k < n; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; data[k] = x & 255; }
    const s = net.connect(${JSON.stringify(path)}, () => {
      const next = () => {
        while (i < n) {
          seed = (seed * 1103515245 + 12345) >>> 0;
          const m = 1 + (seed % (256 * 1024));
          const ok = s.write(data.subarray(i, i + m)); i += m;
          if (!ok) return s.once("drain", next);
        }
        s.end();
      };
      next();
    });`;
    const child = run("node", ["-e", script]);
    const conn = (await server.accept())!;
    const [hash, n] = await hashStream(conn.readable);
    await conn.close(); // Node's socket closes once ours has too
    await child;
    assert.equal(n, BIG);
    assert.equal(hash, sha(data));
  },
);

test(
  "64 MiB byte-exact from a winpipe client, in random chunks, into Python's socket",
  { skip },
  async () => {
    const data = bytes(9, BIG);
    const path = join(root, unique("python"));
    const script = `
import socket, hashlib, sys
s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)}); s.listen()
print("ready", flush=True)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
c.sendall(f"{n} {h.hexdigest()}".encode()); c.close()`;
    const child = spawn("python3", ["-c", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise((r) => child.stdout.once("data", r));
    const conn = await connect(path);
    const w = conn.writer!;
    for (const c of chunks(data, 5)) {
      if (!w.write(c)) await new Promise((r) => w.addEventListener("drain", r, { once: true }));
    }
    await w.flush();
    // No half-close on a pipe: Python reads to the end once the client closes its side.
    const reply = conn.reader!.readable.getReader();
    fs.unlinkSync(path);
    const ended = new Promise((r) => child.on("close", r));
    (conn as unknown as { writer: PipeWriter }).writer.close();
    let text = "";
    for (;;) {
      const { value, done } = await reply.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await ended;
    await conn.close();
    assert.equal(text, `${BIG} ${sha(data)}`);
  },
);

test("64 MiB byte-exact both ways with socat", { skip }, async () => {
  const data = bytes(13, BIG);
  const path = join(root, unique("socat"));
  await using server = listen(path);
  // winpipe server -> socat -> file
  const out = join(root, unique("socat-out"));
  const child = run("socat", ["-u", `UNIX-CONNECT:${path}`, `CREATE:${out}`]);
  const conn = (await server.accept())!;
  for (const c of chunks(data, 3)) {
    if (!conn.writer!.write(c)) {
      await new Promise((r) => conn.writer!.addEventListener("drain", r, { once: true }));
    }
  }
  await conn.close();
  await child;
  assert.equal(sha(fs.readFileSync(out)), sha(data));
  fs.unlinkSync(out);
  // socat -> winpipe server
  const input = join(root, unique("socat-in"));
  fs.writeFileSync(input, data);
  const sender = run("socat", ["-u", `FILE:${input}`, `UNIX-CONNECT:${path}`]);
  const conn2 = (await server.accept())!;
  const [hash, n] = await hashStream(conn2.readable);
  await conn2.close();
  await sender;
  assert.equal(n, BIG);
  assert.equal(hash, sha(data));
  fs.unlinkSync(input);
});

test("a writer's caller may reuse a chunk's memory as soon as write() returns", {
  skip,
}, async () => {
  // One buffer, refilled with the next chunk's bytes right after each write(): in Bun a large
  // chunk goes straight to the socket, and only what the socket took may skip the copy.
  for (const size of [64 * 1024, MiB]) {
    const data = bytes(size, 16 * MiB);
    const path = join(root, unique("reuse"));
    await using server = listen(path);
    const out = join(root, unique("reuse-out"));
    const child = run("socat", ["-u", `UNIX-CONNECT:${path}`, `CREATE:${out}`]);
    const conn = (await server.accept())!;
    const buffer = new Uint8Array(size);
    for (let at = 0; at < data.byteLength; at += size) {
      buffer.set(data.subarray(at, at + size));
      const below = conn.writer!.write(buffer);
      buffer.fill(0xee); // scribbled over at once: what was not taken must have been copied
      if (!below) {
        await new Promise((r) => conn.writer!.addEventListener("drain", r, { once: true }));
      }
    }
    await conn.close();
    await child;
    assert.equal(sha(fs.readFileSync(out)), sha(data), `${size} B chunks`);
    fs.unlinkSync(out);
  }
});

test("50 concurrent clients, a slow reader, and close() without loss", { skip }, async () => {
  const path = join(root, unique("many"));
  const server = listen(path);
  const serving = (async () => {
    for await (const conn of server) {
      conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })();
  await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    const conn = await connect(path);
    const data = bytes(100 + i, 256 * 1024);
    const echoed = hashStream(conn.readable);
    conn.writer!.write(data);
    // A half-close: the server's echo ends when our stream does, so every byte comes back.
    await conn.writer!.close();
    const [hash, len] = await echoed;
    assert.equal(len, data.byteLength, `client ${i}`);
    assert.equal(hash, sha(data), `client ${i}`);
    await conn.close();
  }));
  // A slow reader: 4 MiB, read 64 KiB at a time with pauses; nothing lost, backpressure held.
  const slow = await connect(path);
  const data = bytes(42, 4 * MiB);
  let maxQueued = 0;
  const writing = (async () => {
    for (const c of chunks(data, 9)) {
      if (!slow.writer!.write(c)) {
        maxQueued = Math.max(maxQueued, slow.writer!.bytesToWrite);
        await new Promise((r) => slow.writer!.addEventListener("drain", r, { once: true }));
      }
    }
  })();
  const got = new Uint8Array(data.byteLength);
  let n = 0;
  const buf = new Uint8Array(64 * 1024);
  while (n < got.byteLength) {
    const k = await slow.read(buf);
    assert.notEqual(k, null);
    got.set(buf.subarray(0, k!), n);
    n += k!;
    if (n % (1024 * 1024) < 65536) await new Promise((r) => setTimeout(r, 20));
  }
  await writing;
  assert.equal(sha(got), sha(data));
  assert.ok(maxQueued < 2 * MiB + 256 * 1024, `queued ${maxQueued}`);
  await slow.close();
  // close() right after writing delivers everything.
  const sink = join(root, unique("sink"));
  const s2 = listen(sink);
  const c = await connect(sink);
  const srv = (await s2.accept())!;
  const payload = bytes(77, 3 * MiB);
  c.writer!.write(payload);
  const closing = c.close();
  const [hash, len] = await hashStream(srv.readable);
  await closing;
  assert.equal(len, payload.byteLength);
  assert.equal(hash, sha(payload));
  await srv.close();
  await s2.close();
  await server.close();
  await serving;
});

test("maxInstances: a connection past it is closed at once, and a freed slot serves the next", {
  skip,
}, async () => {
  const path = join(root, unique("max"));
  await using server = listen(path, { maxInstances: 2 });
  const served: PipeConnection[] = [];
  const serving = (async () => {
    for await (const conn of server) served.push(conn);
  })();
  const a = await connect(path);
  const b = await connect(path);
  const until = async (what: string, ok: () => boolean) => {
    const deadline = performance.now() + 5_000;
    while (!ok()) {
      if (performance.now() > deadline) assert.fail(`${what}: not after 5 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until("two connections served", () => served.length === 2);
  // The third: the kernel accepted it, the server closes it at once and never hands it out.
  const c = await connect(path);
  const third = await Promise.race([
    c.read(new Uint8Array(8)),
    new Promise((r) => setTimeout(() => r("still open after 5 s"), 5_000)),
  ]);
  assert.equal(third, null, "the third connection ends at once");
  await c.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(served.length, 2);
  // One leaves: its slot serves the next, whose bytes get through.
  await a.close();
  await served[0].close();
  const d = await connect(path);
  await until("the next one served", () => served.length === 3);
  d.writer!.write("hello");
  await d.writer!.close();
  assert.equal(await new Response(served[2].readable).text(), "hello");
  for (const conn of [b, d, ...served.slice(1)]) await conn.close();
  await server.close();
  await serving;
});

test("1000 connect/close cycles leave the descriptors at the baseline", { skip }, async () => {
  const path = join(root, unique("leak"));
  const server = listen(path);
  const serving = (async () => {
    for await (const conn of server) conn.close().catch(() => {});
  })();
  // Linux: /proc/self/fd; macOS: /dev/fd (the same list, from fdescfs).
  const count = () =>
    fs.readdirSync(fs.existsSync("/proc/self/fd") ? "/proc/self/fd" : "/dev/fd").length;
  const cycle = async () => {
    const c = await connect(path);
    c.writer!.write("x");
    await c.close();
  };
  for (let i = 0; i < 20; i++) await cycle(); // warm up the runtime's own descriptors
  await new Promise((r) => setTimeout(r, 200));
  const baseline = count();
  for (let i = 0; i < 1000; i++) await cycle();
  let now = count();
  for (let i = 0; i < 50 && now > baseline; i++) {
    await new Promise((r) => setTimeout(r, 20));
    now = count();
  }
  assert.ok(now <= baseline, `descriptors: ${baseline} before, ${now} after 1000 cycles`);
  await server.close();
  await serving;
});

test("another user can neither connect to the private socket nor take the name (setpriv)", {
  skip: skip || (uid() !== 0 ? "needs root to run a child as another user" : false),
}, async () => {
  const name = unique("squat");
  await using server = listen(name);
  const py = (code: string) =>
    run("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "/usr/bin/python3",
      "-c",
      code,
    ]);
  // Connecting: the 0700 directory stops it.
  const tried = await py(`
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(${JSON.stringify(server.path)}); print("connected")
except OSError as e:
    print(e.errno)`);
  assert.equal(tried.trim(), "13"); // EACCES
  // Taking the name first: the squatter makes the directory for this user's bare names.
  const base = fs.mkdtempSync(join(root, "squat-"));
  fs.chmodSync(base, 0o1777);
  process.env.TMPDIR = base;
  try {
    await py(`
import os, socket
d = ${JSON.stringify(`${base}/winpipe-0`)}
os.mkdir(d, 0o700)
s = socket.socket(socket.AF_UNIX); s.bind(d + "/${name}"); s.listen()`);
    assert.throws(() => listen(name), /belongs to uid 65534, not to this user/);
    await assert.rejects(connect(name), /belongs to uid 65534/);
  } finally {
    process.env.TMPDIR = root;
  }
  void server;
});

test(
  "unref() lets the process end with an accept or a read pending; without it, or after ref(), it is held",
  { skip },
  () => checkRefs(() => join(root, unique("refs")), root),
);

test("a reply after the peer's half-close arrives, both ways (a socket is half-open)", {
  skip,
}, async () => {
  const path = join(root, unique("half"));
  await using server = listen(path);
  // The client half-closes after its request; the server reads to the end, then answers late.
  const answering = (async () => {
    const conn = (await server.accept())!;
    const request = await new Response(conn.readable).text();
    await new Promise((r) => setTimeout(r, 50));
    conn.writer!.write(`reply to ${request}`);
    await conn.close();
    return conn.writer!.error;
  })();
  const client = await connect(path);
  client.writer!.write("request");
  await client.writer!.close();
  assert.equal(await new Response(client.readable).text(), "reply to request");
  assert.equal(await answering, null);
  await client.close();
  // The server half-closes after a greeting; the client reads to the end, then answers late.
  const hearing = (async () => {
    const conn = (await server.accept())!;
    conn.writer!.write("hello");
    await conn.writer!.close();
    const heard = await new Response(conn.readable).text();
    await conn.close();
    return heard;
  })();
  const c2 = await connect(path);
  assert.equal(await new Response(c2.readable).text(), "hello");
  await new Promise((r) => setTimeout(r, 50));
  c2.writer!.write("x".repeat(100_000));
  await c2.close();
  assert.equal(c2.writer!.error, null);
  assert.equal((await hearing).length, 100_000);
});

test("a burst of 600 connects past the listen backlog all connect (Bun says ECONNREFUSED for it)", {
  skip,
}, async () => {
  const path = join(root, unique("burst"));
  await using server = listen(path);
  void (async () => {
    for await (const conn of server) void conn.close();
  })();
  const results = await Promise.allSettled(
    Array.from({ length: 600 }, () => connect(path, { timeout: 20_000 }).then((c) => c.close())),
  );
  const failed = results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
  assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of 600 failed`);
  // A socket file nobody listens on is still refused at once, not tried until the timeout.
  const stale = join(root, unique("stale"));
  execFileSync("python3", [
    "-c",
    `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`,
  ]);
  const t0 = performance.now();
  await assert.rejects(connect(stale), (e: PipeError) => e.code === "ECONNREFUSED");
  assert.ok(performance.now() - t0 < 1_000, "the refusal took the timeout");
});

test("a process that exits with its server open takes the socket file away", {
  skip,
}, async () => {
  const path = join(root, unique("exitfile"));
  const [exe, args] = scriptCommand(join("tests", "peers", "refs.ts"), ["-A"]);
  const r = await start(exe, [...args, "server-unref", path], root, 15_000).exited;
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout.trim(), "ready");
  assert.equal(fs.existsSync(path), false, "the socket file was left behind");
});

test("a connection whose peer half-closed, read to its end, does not hold the process", {
  skip,
}, async () => {
  const path = join(root, unique("halfref"));
  await using server = listen(path);
  const kept: PipeConnection[] = [];
  void (async () => {
    for await (const conn of server) {
      kept.push(conn);
      conn.writer!.write("bye");
      await conn.writer!.close(); // half-close, and the connection stays open
    }
  })();
  const [exe, args] = scriptCommand(join("tests", "peers", "refs.ts"), ["-A"]);
  const r = await start(exe, [...args, "conn-half-ended", path], root, 15_000).exited;
  assert.equal(r.timedOut, false, "the child was still running after 15 s");
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  await Promise.all(kept.map((c) => c.close()));
});

test("Deno needs exactly the flags the README names for a socket path", {
  skip: skip || (runtimeName() !== "deno" ? "Deno's permissions" : false),
}, async () => {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const path = join(root, unique("perm"));
  const script = join(root, unique("perm") + ".ts");
  fs.writeFileSync(
    script,
    `import { connect, listen } from ${JSON.stringify(mod)};
const s = listen(${JSON.stringify(path)});
const got = s.accept();
const c = await connect(${JSON.stringify(path)});
await (await got)!.close(); await c.close(); await s.close(); console.log("ok");`,
  );
  const flags = [`--allow-read=${root}`, `--allow-write=${root}`, `--allow-net=unix:${path}`];
  const deno = process.execPath;
  assert.equal((await run(deno, ["run", "--no-prompt", ...flags, script])).trim(), "ok");
  await assert.rejects(
    run(deno, ["run", "--no-prompt", ...flags.slice(0, 2), script]),
    /Deno needs permissions for Unix sockets: --allow-read=.* --allow-net=unix:/,
  );
});

test(
  "Deno needs exactly the flags the README names for a bare name, and a missing one is a PipeError that lists them",
  {
    skip: skip || (runtimeName() !== "deno" ? "Deno's permissions" : false),
  },
  async () => {
    const mod = new URL("../mod.ts", import.meta.url).href;
    const name = unique("bare-perm");
    const script = join(root, unique("perm") + ".ts");
    fs.writeFileSync(
      script,
      `import { connect, listen } from ${JSON.stringify(mod)};
try {
  const s = listen(${JSON.stringify(name)});
  const got = s.accept();
  const c = await connect(${JSON.stringify(name)});
  await (await got)!.close(); await c.close(); await s.close(); console.log("ok");
} catch (e) {
  console.log(e.name, e.code, e.message);
}`,
    );
    const deno = process.execPath;
    const base = fs.mkdtempSync(join(root, "perm-"));
    const xdg = fs.mkdtempSync(join(root, "xdg-"));
    fs.chmodSync(xdg, 0o700);
    // Only what the run is given: TMP and TEMP are set, and must not be asked for.
    const plain = { PATH: process.env.PATH ?? "/usr/bin:/bin", TMP: "/nowhere", TEMP: "/nowhere" };
    const cases = [
      { env: { ...plain, TMPDIR: base }, dir: `${base}/winpipe-${process.getuid!()}`, read: "" },
      { env: { ...plain, TMPDIR: base, XDG_RUNTIME_DIR: xdg }, dir: `${xdg}/winpipe`, read: xdg },
    ];
    for (const { env, dir, read } of cases) {
      const flags = [
        "--allow-env=XDG_RUNTIME_DIR,TMPDIR",
        "--allow-sys=uid",
        `--allow-read=${read || dir}`,
        `--allow-write=${dir}`,
        `--allow-net=unix:${dir}/${name}`,
      ];
      const said = (f: string[]) => run(deno, ["run", "--no-prompt", ...f, script], undefined, env);
      assert.equal((await said(flags)).trim(), "ok", JSON.stringify(env));
      // Each flag left out in turn: a PipeError (never Deno's own NotCapable) that lists the flags.
      for (let i = 0; i < flags.length; i++) {
        const out = (await said(flags.filter((_, j) => j !== i))).trim();
        assert.match(
          out,
          /^PipeError EACCES .*Deno needs permissions for (Unix sockets|a bare name's socket): --allow-env=XDG_RUNTIME_DIR,TMPDIR --allow-sys=uid/,
          `without ${flags[i]}`,
        );
        if (i >= 2) assert.ok(out.includes(flags.join(" ")), `without ${flags[i]}: ${out}`);
      }
    }
  },
);

test("a bare name's directory reads TMPDIR only: TMP and TEMP are not the temp directory", {
  skip,
}, async () => {
  const { tmpdir: winpipeTmp } = await import("../posix/system.ts");
  const saved = { TMPDIR: process.env.TMPDIR, TMP: process.env.TMP };
  try {
    delete process.env.TMPDIR;
    process.env.TMP = root;
    assert.equal(winpipeTmp(), "/tmp");
    process.env.TMPDIR = "relative/dir";
    assert.equal(winpipeTmp(), "/tmp");
    process.env.TMPDIR = root;
    assert.equal(winpipeTmp(), root);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test(
  "close() with bad options rejects with a TypeError, and closes nothing",
  { skip },
  async () => {
    const path = join(root, unique("badclose"));
    await using server = listen(path);
    const got = server.accept();
    const c = await connect(path);
    const s = (await got)!;
    for (const bad of [5, null, { timeout: "x" }, { timeout: -1 }]) {
      let promise: Promise<void> | undefined;
      assert.doesNotThrow(() => (promise = c.close(bad as never)), JSON.stringify(bad));
      await assert.rejects(promise!, TypeError);
    }
    assert.equal(await c.write(new TextEncoder().encode("open")), 4);
    const buf = new Uint8Array(8);
    assert.equal(new TextDecoder().decode(buf.subarray(0, (await s.read(buf))!)), "open");
    await c.close();
    await s.close();
  },
);

test(
  "a peer that leaves: the writer's error names the socket's call once, with no words repeated",
  {
    skip,
  },
  async () => {
    const path = join(root, unique("gone"));
    await using server = listen(path);
    const got = server.accept();
    const c = await connect(path);
    await (await got)!.close();
    const w = c.writer!;
    for (let i = 0; i < 200 && !w.error; i++) {
      w.write(new Uint8Array(64 * 1024));
      await new Promise((r) => setTimeout(r, 5));
    }
    const e = w.error;
    assert.ok(e instanceof PipeError && e.peerGone, `the writer failed: ${e}`);
    assert.equal(e.syscall, "write");
    // "EPIPE: write failed on …: EPIPE (32)" repeated the code as words of its own.
    assert.match(
      e.message,
      /^write failed on \/.*: (EPIPE|ECONNRESET|ENOTCONN) \(\d+\): /,
      e.message,
    );
    await c.close();
  },
);

test("the README's write loop ends with the failure when the peer leaves mid-stream (drained())", {
  skip,
}, async () => {
  const path = join(root, unique("usage-gone"));
  await using server = listen(path);
  const got = server.accept();
  const w = await PipeWriter.open(path);
  const peer = (await got)!;
  // The peer reads about 1 MiB, then leaves.
  void (async () => {
    const buf = new Uint8Array(64 * 1024);
    for (let n = 0; n < 1 << 20;) n += (await peer.read(buf)) ?? 1 << 20;
    await peer.close();
  })();
  const line = "x".repeat(8191) + "\n";
  const loop = (async () => {
    for (let i = 0; i < 4000; i++) {
      if (!w.write(line)) await w.drained();
    }
    await w.flush();
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = await Promise.race([
    loop.then(() => "finished", (e) => e),
    new Promise((r) => (timer = setTimeout(() => r("still waiting after 10 s"), 10_000))),
  ]);
  clearTimeout(timer);
  assert.ok(failed instanceof PipeError && failed.peerGone, String(failed));
  await w.close().catch(() => {});
});

test("read(p) and write(p) work as Deno.Conn's do", { skip }, async () => {
  const path = join(root, unique("rw"));
  await using server = listen(path);
  const got = server.accept();
  const c = await connect(path);
  const s = (await got)!;
  assert.ok(s instanceof PipeConnection);
  assert.equal(await c.write(new TextEncoder().encode("hello")), 5);
  const buf = new Uint8Array(16);
  const n = await s.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "hello");
  await c.close();
  assert.equal(await s.read(buf), null);
  await s.close();
});

test(
  "read(p): a small p takes a large write in parts, calls made at once are served in order, and the stream is then locked",
  {
    skip,
  },
  async () => {
    const path = join(root, unique("readp"));
    await using server = listen(path);
    const got = server.accept();
    const c = await connect(path);
    const s = (await got)!;
    const data = bytes(5, 3 * 1024 * 1024 + 17);
    c.writer!.write(data);
    // Four calls at once, of odd sizes: each copies into its own p, in the order they were made.
    const out = await readInOddParts((p) => s.read(p), data.byteLength);
    assert.equal(sha(out), sha(data));
    assert.throws(() => s.readable.getReader(), TypeError, "read(p) holds the stream's lock");
    await c.close();
    assert.equal(await s.read(new Uint8Array(8)), null);
    // A stream that was read first: read(p) goes on through it, losing nothing it had taken.
    const got2 = server.accept();
    const c2 = await connect(path);
    const s2 = (await got2)!;
    c2.writer!.write(new TextEncoder().encode("first"));
    const r = s2.readable.getReader({ mode: "byob" });
    const head = await r.read(new Uint8Array(2));
    assert.equal(new TextDecoder().decode(head.value), "fi");
    r.releaseLock();
    const rest = new Uint8Array(16);
    const k = await s2.read(rest);
    assert.equal(new TextDecoder().decode(rest.subarray(0, k!)), "rst");
    await c2.close();
    await s2.close();
    await s.close();
  },
);

test(
  "write(p) to a peer that stops reading waits, and ends when close() gives up; read(p) ends at close()",
  { skip },
  async () => {
    const path = join(root, unique("stall"));
    await using server = listen(path);
    const got = server.accept();
    const c = await connect(path, { highWaterMark: 64 * 1024 });
    const s = (await got)!; // never reads
    const chunk = new Uint8Array(64 * 1024);
    let written = 0;
    let stalled: Promise<number> | undefined;
    for (let i = 0; i < 1000 && !stalled; i++) {
      const w = c.write(chunk);
      const settled = await Promise.race([
        w.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 100)),
      ]);
      if (settled) written += chunk.byteLength;
      else stalled = w;
    }
    assert.ok(stalled, `the kernel took ${written} bytes and never pushed back`);
    const started = performance.now();
    const outcome = stalled.then(() => "resolved", (e: unknown) => e);
    await assert.rejects(
      c.close({ timeout: 200 }),
      (e: unknown) => e instanceof PipeError && e.code === "ERROR_TIMEOUT",
    );
    // Bounded: a write(p) that outlived the writer would never settle.
    const e = await Promise.race([
      outcome,
      new Promise((r) => setTimeout(() => r("still waiting after 5 s"), 5_000)),
    ]);
    assert.ok(e instanceof PipeError, String(e));
    assert.ok(performance.now() - started < 5_000);
    await s.close();
    // A read that waits for bytes ends with null when its connection is closed.
    const got2 = server.accept();
    const c2 = await connect(path);
    const s2 = (await got2)!;
    const pending = s2.read(new Uint8Array(16));
    await s2.close();
    assert.equal(await pending, null);
    await c2.close();
  },
);

test(
  "errors: what the system refused has its errno name; what winpipe decides has the same ERROR_* name as on Windows (docs/unix.md)",
  { skip },
  async () => {
    await assert.rejects(
      connect(join(root, unique("nobody"))),
      (e: unknown) => e instanceof PipeError && e.code === "ENOENT" && e.errno === 2,
    );
    const path = join(root, unique("codes"));
    await using server = listen(path);
    const got = server.accept();
    const c = await connect(path);
    const s = (await got)!;
    await c.close();
    await assert.rejects(
      c.write(new Uint8Array(1)),
      (e: unknown) =>
        e instanceof PipeError && e.code === "ERROR_INVALID_HANDLE"
        && /after the writer was closed/.test(e.message),
    );
    await s.close();
    const got2 = server.accept();
    const c2 = await connect(path);
    const s2 = (await got2)!;
    // A peer that does not read: stop() ends the write that waits, and what comes after.
    c2.writer!.write(new Uint8Array(32 * 1024 * 1024));
    const flushed = c2.writer!.flush();
    await c2.writer!.stop();
    await assert.rejects(
      flushed,
      (e: unknown) =>
        e instanceof PipeError && e.code === "ERROR_OPERATION_ABORTED"
        // A socket's call, not Windows' (it said "WriteFile failed" here).
        && e.syscall === "write" && /^the writer was stopped: write failed on /.test(e.message),
    );
    assert.throws(
      () => c2.writer!.write(new Uint8Array(1)),
      (e: unknown) =>
        e instanceof PipeError && e.code === "ERROR_INVALID_HANDLE"
        && /after the writer was stopped/.test(e.message),
    );
    await c2.close();
    await s2.close();
  },
);

test("the CLI's recv, ended by SIGINT or SIGTERM while it waits, takes its socket file away", {
  skip,
}, async () => {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const path = join(root, unique("recv-sig"));
    const args = runtimeName() === "deno" ? ["run", "-A", cli] : [cli];
    const child = spawn(process.execPath, [...args, "recv", "--quiet", path], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    const exited = new Promise<number | string | null>((r) =>
      // Deno's node:child_process reports an exit status of 128 + n as signal n.
      child.on("exit", (c, s) => r(c ?? (s === signal ? code : s)))
    );
    for (let i = 0; i < 200 && !fs.existsSync(path); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(fs.existsSync(path), `recv did not listen: ${err}`);
    child.kill(signal);
    assert.equal(await exited, code, `${signal}: ${err}`);
    assert.equal(fs.existsSync(path), false, `${signal}: the socket file was left behind`);
  }
});

test("the CLI's send, recv and relay work on Linux with the same names", { skip }, async () => {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const exe = process.execPath;
  const cmd = (...a: string[]) => runtimeName() === "deno" ? ["run", "-A", cli, ...a] : [cli, ...a];
  const name = unique("cli");
  const data = bytes(21, 5 * MiB);
  const input = join(root, unique("cli-in"));
  const output = join(root, unique("cli-out"));
  fs.writeFileSync(input, data);
  // recv listens on the bare name; send waits for it to appear.
  const receiving = run(exe, cmd("recv", "--quiet", name, output));
  await run(exe, cmd("send", "--quiet", "--wait", "--timeout", "10000", name, input));
  await receiving;
  assert.equal(sha(fs.readFileSync(output)), sha(data));
  // relay: stdin to the socket, the socket to stdout, against a winpipe echo server.
  const path = join(root, unique("relay"));
  const server = listen(path);
  const serving = (async () => {
    for await (const conn of server) conn.readable.pipeTo(conn.writable).catch(() => {});
  })();
  // At stdin's end the relay half-closes; the echo ends, and so does the relay.
  const echoed = await Promise.race([
    run(exe, cmd("relay", "--quiet", path), new TextEncoder().encode("over the relay\n")),
    new Promise((r) => setTimeout(() => r("relay still running after 20 s"), 20_000).unref?.()),
  ]);
  assert.equal(echoed, "over the relay\n");
  await server.close();
  await serving;
});
