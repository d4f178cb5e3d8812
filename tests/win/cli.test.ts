// `winpipe send` against a real pipe: the bytes, the progress bar, and the exit codes.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../cli.ts";
import { Pattern, ServerEnd, uniqueName, within } from "./server_end.ts";

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
    assert.match(c.out.stderr, /\r\[#+\] 100%  8\.0 MiB \/ 8\.0 MiB  [\d.]+ [KMG]iB\/s\x1b\[K\n$/);
    for (const line of c.out.stderr.split(/\r|\x1b\[K\n?/)) assert.ok(line.length <= 99, line);
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
  assert.match(c.out.stderr, /\r2\.9 MiB  [\d.]+ [KMG]iB\/s/);
  rmSync(dir, { recursive: true, force: true });
});

test("relay: stdin to the pipe, the pipe to stdout, until the server closes", async () => {
  const { listen } = await import("../../mod.ts");
  const name = uniqueName("relay");
  const server = listen(name);
  const serving = (async () => {
    const conn = (await server.accept())!;
    const r = conn.readable.getReader();
    let request = "";
    while (!request.endsWith("\n")) request += new TextDecoder().decode((await r.read()).value);
    r.releaseLock();
    conn.writer!.write(`pong: ${request}`);
    await conn.close(); // the response, then the end: relay exits
  })();
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
  assert.match(stderr, /\r11 B  [\d.]+ [KMG]?i?B\/s/, "progress on a TTY");
  await server.close();
});
