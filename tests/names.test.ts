// Pipe-name validation: what is local, what is remote, what is not a pipe name at all, and the
// names that Win32 would rewrite into another host or a device.
import assert from "node:assert/strict";
import { test } from "node:test";
import { validatePipeName } from "../core/names.ts";

const decode = (w: Uint16Array) => String.fromCharCode(...w.subarray(0, w.length - 1));

test("local names are accepted and made NUL-terminated UTF-16", () => {
  for (
    const name of [
      String.raw`\\.\pipe\a`,
      String.raw`\\?\pipe\b`,
      String.raw`\\.\PIPE\x\y`,
      String.raw`\\.\pipe\my.app\v1.2`,
      String.raw`\\.\pipe\.hidden`,
      String.raw`\\.\pipe\LOCAL\x`,
    ]
  ) {
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

test("the remote refusal names the switch the caller has (the CLI's --allow-remote)", () => {
  assert.throws(
    () => validatePipeName(String.raw`\\server\pipe\x`, {}, "--allow-remote is given"),
    (e: Error) => /--allow-remote/.test(e.message) && !/allowRemote/.test(e.message),
  );
});

test("things that are not pipe names are a TypeError that says why", () => {
  const cases: [unknown, RegExp][] = [
    [undefined, /must be a string/],
    [42, /must be a string/],
    ["pipe-name", /not a pipe name/],
    [String.raw`\\.\pipe\ `.trim(), /empty segment/],
    [String.raw`C:\temp\file`, /not a pipe name/],
    [String.raw`\\.\pipe\a` + "\0b", /NUL/],
    [String.raw`\\.\pipe\\` + "x".repeat(300), /256/],
    ["//./pipe/x", /not a pipe name/],
    [String.raw`\\./pipe\x`, /not a pipe name/],
  ];
  for (const [name, message] of cases) {
    assert.throws(() => validatePipeName(name), { name: "TypeError", message });
  }
});

// Each of these resolves (GetFullPathNameW) to another host, the object namespace or a device.
const walkArounds = [
  String.raw`\\.\pipe\..\UNC\otherhost\pipe\x`,
  String.raw`\\.\pipe\a\..\..\UNC\otherhost\pipe\x`,
  String.raw`\\.\pipe\..\GLOBALROOT\Device\Mup\otherhost\pipe\x`,
  String.raw`\\.\pipe\..\COM1`,
  String.raw`\\?\pipe\..\UNC\otherhost\pipe\x`,
  String.raw`\\.\pipe\.\x`,
  String.raw`\\.\pipe\a\.`,
  String.raw`\\.\pipe\a\..`,
  String.raw`\\.\pipe\..`,
  String.raw`\\.\pipe\...\x`,
  String.raw`\\.\pipe\.. .\UNC\h\pipe\x`,
  String.raw`\\.\pipe\a\\b`,
  String.raw`\\.\pipe\a\ `,
  String.raw`\\.\pipe\x.`,
  String.raw`\\.\pipe\a\ `.trimEnd(),
];

test("'.', '..', empty and trailing-dot segments are refused, whichever form", () => {
  for (const name of walkArounds) {
    assert.throws(() => validatePipeName(name), {
      name: "TypeError",
      message: /segment|rewrite/,
    }, name);
    // allowRemote does not make them acceptable: they are not the remote name they seem.
    assert.throws(() => validatePipeName(name, { allowRemote: true }), TypeError, name);
  }
});

test("'/' anywhere after pipe\\ is refused, alone or mixed with '\\'", () => {
  for (
    const name of [
      String.raw`\\.\pipe\../UNC/otherhost/pipe/x`,
      String.raw`\\.\pipe\a/../../UNC/otherhost/pipe/x`,
      String.raw`\\.\pipe\../GLOBALROOT/Device/Mup/otherhost/pipe/x`,
      String.raw`\\.\pipe\../COM1`,
      String.raw`\\.\pipe\a/b`,
    ]
  ) {
    assert.throws(() => validatePipeName(name), { name: "TypeError", message: /"\/"/ }, name);
  }
});

test("remote names get the same segment checks, and a host may not end in a dot", () => {
  assert.throws(
    () => validatePipeName(String.raw`\\server\pipe\..\x`, { allowRemote: true }),
    /segment/,
  );
  assert.throws(() => validatePipeName(String.raw`\\..\pipe\x`, { allowRemote: true }), /host/);
});
