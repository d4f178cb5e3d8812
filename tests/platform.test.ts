// The same API on every OS: what only Windows has is refused elsewhere with a clear error, and
// names are checked before any system call.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isWindows, platformName, runtimeName } from "../ffi/runtime.ts";
import * as winpipe from "../mod.ts";

test("importing the module works and exports the API", () => {
  assert.equal(typeof winpipe.PipeWriter.open, "function");
  assert.equal(typeof winpipe.PipeWriter.fromHandle, "function");
  assert.equal(typeof winpipe.PipeError, "function");
  assert.equal(typeof winpipe.pipePath, "function");
  assert.ok(["deno", "bun"].includes(runtimeName()));
});

test("off Windows, a Windows pipe name is a TypeError that names this OS", {
  skip: isWindows() ? "this is Windows: tests/win covers open()" : false,
}, async () => {
  await assert.rejects(winpipe.PipeWriter.open(String.raw`\\.\pipe\x`), (e: unknown) => {
    assert.ok(e instanceof TypeError);
    assert.match(e.message, /is a Windows pipe name, and this is (Linux|macOS)/);
    return true;
  });
  await assert.rejects(winpipe.connect(String.raw`\\.\pipe\x`), TypeError);
  assert.throws(() => winpipe.listen(String.raw`\\.\pipe\x`), TypeError);
});

test(
  "off Windows, fromHandle() throws ENOTSUP naming the call and the OS; bad input is still refused",
  {
    skip: isWindows() ? "this is Windows: tests/win covers fromHandle()" : false,
  },
  () => {
    for (
      const make of [
        () => winpipe.PipeWriter.fromHandle(4n),
        () => winpipe.PipeReader.fromHandle(4n),
      ]
    ) {
      assert.throws(make, (e: unknown) => {
        assert.ok(e instanceof winpipe.PipeError);
        assert.equal(e.code, "ENOTSUP");
        assert.ok(e.message.includes(platformName()), e.message);
        assert.match(e.message, /fromHandle\(\) wraps a Windows pipe HANDLE/);
        return true;
      });
    }
  },
);

test("bad names are a TypeError before any system call, on every platform", async () => {
  for (const bad of [String.raw`\\host\pipe\x`, "", "..", ".", "a/b", "x\0y", "trailing."]) {
    await assert.rejects(winpipe.PipeWriter.open(bad), TypeError, JSON.stringify(bad));
    await assert.rejects(winpipe.connect(bad), TypeError, JSON.stringify(bad));
    assert.throws(() => winpipe.listen(bad), TypeError, JSON.stringify(bad));
    assert.throws(() => winpipe.pipePath(bad), TypeError, JSON.stringify(bad));
  }
  await assert.rejects(winpipe.connect(42 as never), TypeError);
});
