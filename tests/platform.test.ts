// Off Windows, importing works and using it throws a clear error that names the platform.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isWindows, platformName, runtimeName } from "../ffi/runtime.ts";
import * as winpipe from "../mod.ts";

test("importing the module works and exports the API", () => {
  assert.equal(typeof winpipe.PipeWriter.open, "function");
  assert.equal(typeof winpipe.PipeWriter.fromHandle, "function");
  assert.equal(typeof winpipe.PipeError, "function");
  assert.ok(["deno", "bun"].includes(runtimeName()));
});

test("off Windows, open() rejects with ERROR_NOT_SUPPORTED naming the platform", {
  skip: isWindows() ? "this is Windows: tests/win covers open()" : false,
}, async () => {
  await assert.rejects(winpipe.PipeWriter.open(String.raw`\\.\pipe\x`), (e: unknown) => {
    assert.ok(e instanceof winpipe.PipeError);
    assert.equal(e.code, "ERROR_NOT_SUPPORTED");
    assert.ok(e.message.includes(platformName()), e.message);
    assert.match(e.message, /needs Windows/);
    return true;
  });
});

test("off Windows, fromHandle() throws ERROR_NOT_SUPPORTED; bad input is still a TypeError", {
  skip: isWindows() ? "this is Windows: tests/win covers fromHandle()" : false,
}, () => {
  assert.throws(() => winpipe.PipeWriter.fromHandle(4n), { code: "ERROR_NOT_SUPPORTED" });
  assert.throws(() => winpipe.PipeWriter.fromHandle("4" as never), TypeError);
  assert.throws(() => winpipe.PipeWriter.fromHandle(0n), TypeError);
});

test("bad names are a TypeError before any system call, on every platform", async () => {
  await assert.rejects(winpipe.PipeWriter.open("not-a-pipe"), TypeError);
  await assert.rejects(winpipe.PipeWriter.open(String.raw`\\host\pipe\x`), TypeError);
});
