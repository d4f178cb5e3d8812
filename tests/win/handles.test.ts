// The leak checks' handle count must be able to fail: it reads non-zero, it moves by one when
// one handle is opened or closed, and a leak is reported by type.
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/runtime.ts";
import { securityAttributes } from "../../windows/security.ts";
import {
  assertHandlesBack,
  getProcessHandleCount,
  handleCensus,
  handleSnapshot,
  processHandleCount,
} from "./handles.ts";

test("the handle count is never 0, and follows handles opened and closed", () => {
  const k = native().kernel32;
  const before = processHandleCount();
  assert.ok(before > 0, `count ${before}`);
  const events = Array.from({ length: 3 }, () => k.CreateEventW(securityAttributes(), 1, 0, null));
  assert.equal(processHandleCount(), before + 3, "three more handles");
  for (const e of events) k.CloseHandle(e);
  assert.equal(processHandleCount(), before);
});

test("a leaked handle fails the check, and the message names its type", async () => {
  const k = native().kernel32;
  const before = handleSnapshot();
  const leaked = k.CreateEventW(securityAttributes(), 1, 0, null);
  try {
    await assert.rejects(assertHandlesBack(before, "leak", 100), /Event \+1/);
  } finally {
    k.CloseHandle(leaked);
  }
  await assertHandlesBack(before, "after closing it");
});

test("under Wine, GetProcessHandleCount reads 0 and the handle table is what counts", {
  skip: process.env.WINPIPE_UNDER_WINE ? false : "on Windows GetProcessHandleCount works",
}, () => {
  assert.equal(getProcessHandleCount(), 0, "if Wine fixed this, the fallback is no longer needed");
  const census = handleCensus();
  assert.ok(census && Object.values(census).reduce((a, b) => a + b, 0) > 0);
});
