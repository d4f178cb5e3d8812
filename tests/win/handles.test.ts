// The leak checks' handle count must be able to fail: it reads non-zero, and it moves by one
// when one handle is opened or closed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { securityAttributes } from "../../core/security.ts";
import { native } from "../../ffi/runtime.ts";
import { getProcessHandleCount, processHandleCount, systemTableHandleCount } from "./handles.ts";

test("the handle count is never 0, and follows one handle opened and closed", () => {
  const k = native().kernel32;
  const before = processHandleCount();
  assert.ok(before > 0, `count ${before}`);
  const events = Array.from({ length: 3 }, () => k.CreateEventW(securityAttributes(), 1, 0, null));
  assert.equal(processHandleCount(), before + 3, "three more handles");
  for (const e of events) k.CloseHandle(e);
  assert.equal(processHandleCount(), before);
});

test("under Wine, GetProcessHandleCount reads 0 and the system table is what counts", {
  skip: process.env.WINPIPE_UNDER_WINE ? false : "on Windows GetProcessHandleCount works",
}, () => {
  assert.equal(getProcessHandleCount(), 0, "if Wine fixed this, the fallback is no longer needed");
  assert.ok((systemTableHandleCount() ?? 0) > 0);
});
