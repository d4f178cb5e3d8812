// Pipe-name validation: what is local, what is remote, what is not a pipe name at all.
import assert from "node:assert/strict";
import { test } from "node:test";
import { validatePipeName } from "../core/names.ts";

const decode = (w: Uint16Array) => String.fromCharCode(...w.subarray(0, w.length - 1));

test("local names are accepted and made NUL-terminated UTF-16", () => {
  for (const name of [String.raw`\\.\pipe\a`, String.raw`\\?\pipe\b`, String.raw`\\.\PIPE\x\y`]) {
    const w = validatePipeName(name);
    assert.equal(decode(w), name);
    assert.equal(w[w.length - 1], 0);
  }
});

test("remote names are refused unless allowRemote", () => {
  const remote = String.raw`\\server\pipe\docker_engine`;
  assert.throws(() => validatePipeName(remote), {
    name: "TypeError",
    message: /remote host "server".*allowRemote/,
  });
  assert.equal(decode(validatePipeName(remote, { allowRemote: true })), remote);
});

test("things that are not pipe names are a TypeError that says why", () => {
  const cases: [unknown, RegExp][] = [
    [undefined, /must be a string/],
    [42, /must be a string/],
    ["pipe-name", /not a pipe name/],
    [String.raw`\\.\pipe\ `.trim(), /not a pipe name/],
    [String.raw`C:\temp\file`, /not a pipe name/],
    [String.raw`\\.\pipe\a` + "\0b", /NUL/],
    [String.raw`\\.\pipe\\` + "x".repeat(300), /256/],
  ];
  for (const [name, message] of cases) {
    assert.throws(() => validatePipeName(name), { name: "TypeError", message });
  }
});
