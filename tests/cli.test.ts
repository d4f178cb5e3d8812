// The winpipe command's argument handling and error reporting (any OS).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { formatBytes, main, Output, progressLine, toStdout, waitForDrain } from "../cli.ts";
import { isWindows } from "../ffi/runtime.ts";

function io() {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s), isTTY: false },
      stdin: (async function*() {})(),
    },
  };
}

test("no command prints usage and exits 2; --help exits 0", async () => {
  const a = io();
  assert.equal(await main([], a.io), 2);
  assert.match(a.out.stderr, /usage: winpipe send/);
  const b = io();
  assert.equal(await main(["--help"], b.io), 0);
  assert.match(b.out.stdout, /usage: winpipe send/);
});

test("usage errors exit 2 and say what is wrong", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["send"], /send takes <pipe> \[file\]/],
    [["send", "a", "b", "c"], /send takes <pipe> \[file\]/],
    [["send", "--timeout", "soon", String.raw`\\.\pipe\x`], /--timeout takes milliseconds/],
    [["send", "--bogus", String.raw`\\.\pipe\x`], /unknown option --bogus/],
    [["send", "-x", "y"], /unknown option -x \(a name that starts with "-" goes after --\)/],
    [["relay", String.raw`\\.\pipe\x`, "extra"], /relay takes <pipe>$/m],
    [["recv"], /recv takes <pipe> \[file\]/],
  ];
  for (const [args, message] of cases) {
    const c = io();
    assert.equal(await main(args, c.io), 2, args.join(" "));
    assert.match(c.out.stderr, message);
  }
});

test("after --, an argument that starts with - is a name, not an option", async () => {
  const c = io();
  // Parsed as <pipe> and [file]: the command runs, and fails only at the pipe (there is none).
  const pipe = `-winpipe-test-${process.pid}`; // a bare name nobody serves
  assert.equal(await main(["send", "--timeout", "0", "--", pipe, "README.md"], c.io), 1);
  assert.doesNotMatch(c.out.stderr, /usage:|unknown option/);
});

test("--timeout takes digits: an empty, blank or non-numeric value is a usage error", async () => {
  const pipe = isWindows() ? String.raw`\\.\pipe\x` : "/nonexistent-winpipe/x";
  for (
    const value of ["", " ", "\t", "  \n", "soon", "5s", "-1", " 5000", "0x10", "1e3", "Infinity"]
  ) {
    for (const command of ["send", "relay"]) {
      const c = io();
      const args = [command, "--timeout", value, pipe];
      assert.equal(await main(args, c.io), 2, JSON.stringify(args));
      assert.match(
        c.out.stderr,
        /^winpipe: --timeout takes milliseconds, a number >= 0 like 5000, not "/,
        JSON.stringify(args),
      );
      assert.ok(c.out.stderr.includes(JSON.stringify(value)), c.out.stderr);
    }
  }
  const missing = io();
  assert.equal(await main(["send", pipe, "--timeout"], missing.io), 2);
  assert.match(missing.out.stderr, /^winpipe: --timeout takes milliseconds, .*not nothing\n/);
  // Digits pass: the command runs, and fails only at the pipe (there is none).
  for (const value of ["0", "2500", "1.5"]) {
    const c = io();
    assert.equal(await main(["send", "--timeout", value, pipe, "README.md"], c.io), 1, value);
    assert.doesNotMatch(c.out.stderr, /usage:/, value);
  }
});

test("the pipe name is checked up front, for every command, in the CLI's words", async () => {
  const remote = String.raw`\\host\pipe\x`;
  const cases: [string[], RegExp][] = [
    [["send", "a/b"], /^winpipe: send: the bare name "a\/b" contains/],
    [["recv", ".."], /^winpipe: recv: a bare name must not be "\.\."/],
    [["relay", ""], /^winpipe: relay: the name is empty/],
  ];
  if (isWindows()) {
    cases.push(
      [["recv", String.raw`\\.\pipe\..\COM1`, "out.bin"], /^winpipe: .*a "\.\." segment/],
      [["send", remote], /^winpipe: .*remote pipes are refused unless --allow-remote is given\n/],
      [["relay", remote], /^winpipe: .*remote pipes are refused unless --allow-remote is given\n/],
      [["recv", remote], /^winpipe: recv creates the pipe, so its name must be local/],
      [["send", "/tmp/x"], /^winpipe: send: "\/tmp\/x" is a Unix socket path, and this is Windows/],
    );
  } else {
    cases.push(
      [["send", remote], /^winpipe: send: .* is a Windows pipe name, and this is (Linux|macOS)/],
      [["send", "--allow-remote", "x"], /^winpipe: --allow-remote is for Windows pipes only/],
      [["recv", "--message", "x"], /^winpipe: --message is for Windows pipes only/],
    );
  }
  for (const [args, message] of cases) {
    const c = io();
    assert.equal(await main(args, c.io), 2, args.join(" "));
    assert.match(c.out.stderr, message);
  }
});

test("an unexpected TypeError is an internal error: exit 1 with its stack, not a usage error", async () => {
  for (const args of [["--help"], ["send", "--help"]]) {
    const c = io();
    c.io.stdout.write = () => {
      throw new TypeError("a bug: out.write is not a function");
    };
    assert.equal(await main(args, c.io), 1, args.join(" "));
    assert.match(
      c.out.stderr,
      /^winpipe: internal error: TypeError: a bug: out\.write is not a function\n\s+at /,
    );
    assert.doesNotMatch(c.out.stderr, /usage:/);
  }
});

test("each command refuses the options it does not take, as USAGE says", async () => {
  const all = ["send", "recv", "relay"];
  const takers: [string[], string[]][] = [
    [["--wait"], ["send", "relay"]],
    [["--timeout", "5000"], ["send", "relay"]],
    [["--allow-remote"], ["send", "relay"]],
    [["--message"], ["recv", "relay"]],
    [["--exit-on-stdin-eof"], ["relay"]],
    [["--quiet"], all],
    [["-q"], all],
  ];
  // USAGE names the same commands for each option (no command named: all of them).
  const usage = io();
  await main(["--help"], usage.io);
  const listed = new Map<string, string[]>();
  for (const m of usage.out.stdout.matchAll(/^ {2}(--[\w-]+)(?: <\w+>)? +(?:([a-z/]+): )?/gm)) {
    listed.set(m[1], m[2] ? m[2].split("/") : all);
  }
  assert.deepEqual(
    [...listed].filter(([o]) => o !== "--help"),
    takers.filter(([[o]]) => o !== "-q").map(([[o], commands]) => [o, commands]),
  );
  for (const [option, commands] of takers) {
    for (const command of all) {
      const c = io();
      // A bad name: an option that is taken gets past the options to the name, and nothing runs.
      const args = [command, ...option, "a/b"];
      assert.equal(await main(args, c.io), 2, args.join(" "));
      if (commands.includes(command)) {
        const windowsOnly = !isWindows() && ["--allow-remote", "--message"].includes(option[0]);
        assert.match(
          c.out.stderr,
          windowsOnly
            ? new RegExp(`^winpipe: ${option[0]} is for Windows pipes only`)
            : /^winpipe: .*the bare name "a\/b" contains "\/"/,
          args.join(" "),
        );
      } else {
        const only = `only ${commands.join(" and ")} ${commands.length === 1 ? "does" : "do"}`;
        assert.equal(
          c.out.stderr.split("\n")[0],
          `winpipe: ${command} does not take ${option[0]} (${only})`,
          args.join(" "),
        );
        assert.match(c.out.stderr, /\n\nusage: winpipe send/);
      }
    }
  }
  // Refused wherever it comes, before the pipe name is looked at.
  const c = io();
  assert.equal(await main(["recv", String.raw`\\host\pipe\x`, "--allow-remote"], c.io), 2);
  assert.match(c.out.stderr, /^winpipe: recv does not take --allow-remote \(only send and relay/);
});

test("a failure exits 1 with the error's name", {
  skip: isWindows() ? "tests/win/cli.test.ts covers failures on Windows" : false,
}, async () => {
  const c = io();
  assert.equal(await main(["send", "/nonexistent-winpipe/x", "README.md"], c.io), 1);
  // The message names ENOENT once: no second "ENOENT: " in front.
  assert.match(c.out.stderr, /^winpipe: connect failed on \/nonexistent-winpipe\/x: ENOENT \(2\)/);
});

test("names of Object.prototype's members are unknown commands", async () => {
  for (const command of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    const c = io();
    assert.equal(await main([command, "x"], c.io), 2, command);
    assert.match(c.out.stderr, /^winpipe: unknown command "/, command);
  }
});

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

test("a progress line fits the terminal: at most columns - 1 characters", () => {
  const rates = [0, 999, 99.9 * MiB, 100 * MiB, 1023.9 * MiB, 5 * GiB, 1023.9 * GiB, 3 * TiB];
  const sizes = [undefined, 0, 1, 64 * MiB, 8.5 * GiB, 1023.9 * GiB, 2 * TiB, 1000 * TiB];
  for (const columns of [40, 80, 120]) {
    for (const total of sizes) {
      for (const done of total === undefined ? [0, 5 * GiB, 3 * TiB] : [0, total / 2, total]) {
        for (const rate of rates) {
          const line = progressLine(done, total, rate, columns);
          const what = `${columns} columns, ${done} of ${total} bytes at ${rate} B/s: ${line}`;
          assert.ok(line.length <= columns - 1, what);
          // A known total shows a bar wherever 80 columns leave room for one.
          if (total !== undefined && columns >= 80) assert.match(line, /^\[[#.]{10,40}\] /, what);
          if (total === undefined) {
            assert.match(line, /^[\d.]+ [KMGT]?i?B {2}[\d.]+ [KMGT]?i?B\/s$/);
          }
        }
      }
    }
  }
});

test("a progress line: the case that wrapped, the bar's width, and shortening", () => {
  // 80 columns at 100 MiB/s used to take 81.
  const line = progressLine(42.3 * MiB, 64 * MiB, 100 * MiB, 80);
  assert.equal(line, `[${"#".repeat(24)}${".".repeat(13)}]  66%  42.3 MiB / 64.0 MiB  100.0 MiB/s`);
  assert.ok(line.length <= 79, `${line.length} characters`);
  // The bar keeps its width whatever the figures, so it does not jump about.
  const bars = new Set<number>();
  for (let done = 0; done <= 64 * MiB; done += 3 * MiB) {
    for (const rate of [1, 9.9 * MiB, 1023.9 * MiB]) {
      bars.add(progressLine(done, 64 * MiB, rate, 80).indexOf("] "));
    }
  }
  assert.equal(bars.size, 1, `bar widths ${[...bars]}`);
  // No room for a bar: it goes; no room for the total: it goes; then the rate; then a cut.
  assert.equal(progressLine(GiB, 2 * TiB, 5 * GiB, 45), "  0%  1.0 GiB / 2.0 TiB  5.0 GiB/s");
  assert.equal(
    progressLine(1023.9 * GiB, 2 * TiB, 1023.9 * GiB, 40),
    " 49%  1023.9 GiB  1023.9 GiB/s",
  );
  assert.equal(progressLine(1023.9 * GiB, 2 * TiB, 1023.9 * GiB, 20), " 49%");
  assert.equal(progressLine(3 * TiB, undefined, 5 * GiB, 12), "3.0 TiB");
  assert.equal(progressLine(3 * TiB, undefined, 5 * GiB, 4), "3.0");
  assert.equal(progressLine(MiB, undefined, KiB), "1.0 MiB  1.0 KiB/s", "80 columns by default");
});

test("formatBytes", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(64 * 1024 * 1024), "64.0 MiB");
});

/** An EventTarget that counts the listeners registered on it, `once` ones included. */
class CountingTarget extends EventTarget {
  readonly #live = new Map<string, Map<EventListenerOrEventListenerObject, EventListener>>();

  get listeners(): number {
    let n = 0;
    for (const byType of this.#live.values()) n += byType.size;
    return n;
  }

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (!listener) return;
    const byType = this.#live.get(type) ?? new Map();
    this.#live.set(type, byType);
    if (byType.has(listener)) return;
    const once = typeof options === "object" && options.once === true;
    const wrapped = (e: Event) => {
      if (once) byType.delete(listener); // the target drops a `once` listener by itself
      if (typeof listener === "function") listener.call(this, e);
      else listener.handleEvent(e);
    };
    byType.set(listener, wrapped);
    super.addEventListener(type, wrapped, options);
  }

  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    const wrapped = listener && this.#live.get(type)?.get(listener);
    if (!wrapped) return;
    this.#live.get(type)!.delete(listener);
    super.removeEventListener(type, wrapped, options);
  }
}

test("waitForDrain leaves no listener behind, whichever event ends the wait", async () => {
  const writer = new CountingTarget();
  for (let i = 1; i <= 100; i++) {
    const waiting = waitForDrain(writer);
    assert.equal(writer.listeners, 2);
    writer.dispatchEvent(new Event("drain"));
    await waiting;
    assert.equal(writer.listeners, 0, `listeners left after ${i} drains`);
  }
  const failure = new Error("WriteFile failed: ERROR_NO_DATA (232)");
  const waiting = waitForDrain(writer);
  writer.dispatchEvent(Object.assign(new Event("error"), { error: failure }));
  await assert.rejects(waiting, (e) => e === failure);
  assert.equal(writer.listeners, 0, "listeners left after an error");
});

test("stdout's backpressure waits leave no listener behind, and no MaxListeners warning", async () => {
  const warnings: unknown[] = [];
  const onWarning = (w: unknown) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    // process.stdout as the command gets it (an Output over the stream), always full.
    const stream = Object.assign(new EventEmitter(), {
      write(_chunk: string | Uint8Array, callback: () => void) {
        callback();
        return false;
      },
    });
    const listeners = () =>
      stream.listenerCount("drain") + stream.listenerCount("error") + stream.listenerCount("close");
    const c = io();
    const cliIo = { ...c.io, stdout: new Output(stream) };
    const chunk = new Uint8Array(16);
    for (let i = 1; i <= 100; i++) {
      const waiting = toStdout(cliIo, chunk);
      assert.equal(listeners(), 3, "drain, error and close");
      stream.emit("drain");
      await waiting;
      assert.equal(listeners(), 0, `listeners left after ${i} drains`);
    }
    const failure = new Error("stdout broke");
    const failing = toStdout(cliIo, chunk);
    stream.emit("error", failure);
    await assert.rejects(failing, (e) => e === failure);
    assert.equal(listeners(), 0, "listeners left after an error");
    const closing = toStdout(cliIo, chunk);
    stream.emit("close");
    await assert.rejects(closing, /standard output was closed/);
    assert.equal(listeners(), 0, "listeners left after a close");
    await new Promise((r) => setTimeout(r, 50)); // a warning is emitted on a later tick
    assert.deepEqual(warnings, []);

    // A stdout with `once` but no `removeListener`: only "drain", which goes as it fires.
    const events: string[] = [];
    const onlyOnce = {
      write: () => false,
      once: (event: string, listener: () => void) => {
        events.push(event);
        setTimeout(listener, 1);
      },
    };
    await toStdout({ ...c.io, stdout: onlyOnce }, chunk);
    assert.deepEqual(events, ["drain"]);
  } finally {
    process.off("warning", onWarning);
  }
});

const repo = join(fileURLToPath(import.meta.url), "..", "..");
const builtCli = join(repo, "dist", "cli.js");

/** `npm run build`, unless dist/cli.js is newer than every source it is built from. */
function ensureBuilt(): void {
  const sources = [
    "cli.ts",
    "mod.ts",
    ...["core", "ffi"].flatMap((d) => readdirSync(join(repo, d)).map((f) => join(d, f))),
  ];
  const built = existsSync(builtCli) ? statSync(builtCli).mtimeMs : 0;
  if (sources.every((f) => statSync(join(repo, f)).mtimeMs < built)) return;
  const r = spawnSync("npm", ["run", "build"], {
    cwd: repo,
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  assert.equal(r.status, 0, `npm run build failed:\n${r.stdout}${r.stderr}`);
}

test("under Node, the built command says that it runs on Deno or Bun, and exits 1", () => {
  ensureBuilt();
  const runs = [[builtCli, "send", "x"], [builtCli]];
  const dir = mkdtempSync(join(tmpdir(), "winpipe-bin-"));
  try {
    if (process.platform !== "win32") {
      // As npm installs it: node_modules/.bin/winpipe is a link to dist/cli.js.
      symlinkSync(builtCli, join(dir, "winpipe"));
      runs.push([join(dir, "winpipe"), "--help"]);
    }
    for (const args of runs) {
      const r = spawnSync("node", args, { cwd: repo, encoding: "utf8" });
      assert.equal(r.error, undefined, "node is on PATH");
      const what = `node ${args.join(" ")}: ${r.stderr}`;
      assert.equal(r.status, 1, what);
      assert.match(r.stderr, /^winpipe runs on Deno or Bun, not Node/, what);
      assert.match(r.stderr, /deno run --allow-ffi .*winpipe\/cli/, what);
      assert.match(r.stderr, /bunx winpipe/, what);
      assert.equal(r.stdout, "", what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("under Bun, the built command runs", () => {
  ensureBuilt();
  // On Windows node_modules/.bin has only a .cmd shim, which needs a shell: npm test gives the
  // real bun.exe in WINPIPE_BUN.
  const bun = process.versions.bun
    ? process.execPath
    : process.platform === "win32"
    ? process.env.WINPIPE_BUN!
    : join(repo, "node_modules", ".bin", "bun");
  assert.ok(bun, "WINPIPE_BUN is set (npm test sets it on Windows)");
  const help = spawnSync(bun, [builtCli, "--help"], { cwd: repo, encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: winpipe send/);
  const none = spawnSync(bun, [builtCli], { cwd: repo, encoding: "utf8" });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^usage: winpipe send/);
});
