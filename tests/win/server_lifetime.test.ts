// A server's lifetime at its edges: leaving a `for await` over it closes it, and an instance (or
// a handle) that fails half-way through being set up is released, not left holding the name.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { connect, listen, PipeError } from "../../mod.ts";
import { checkRefs } from "../peers/refs_check.ts";
import { run, scriptCommand, withDir } from "./child.ts";
import { inject } from "./faults.ts";
import { assertHandlesBack, settledSnapshot } from "./handles.ts";
import { uniqueName, within } from "./server_end.ts";

/** `connect(name)` fails with ERROR_FILE_NOT_FOUND: no instance of the name is left. */
async function assertNameGone(name: string, what: string): Promise<void> {
  await assert.rejects(within(5_000, connect(name)), (e: unknown) => {
    assert.ok(e instanceof PipeError, `${what}: ${e}`);
    assert.equal(e.code, "ERROR_FILE_NOT_FOUND", `${what}: ${e.message}`);
    return true;
  }, `${what}: a client still connects, so an instance of the name is still open`);
}

for (const how of ["break", "throw"] as const) {
  test(`leaving a for await over a server by ${how} closes it: the name is free again`, async () => {
    const before = await settledSnapshot();
    const name = uniqueName(`leave-${how}`);
    const server = listen(name);
    try {
      const loop = (async () => {
        for await (const conn of server) {
          await conn.close();
          if (how === "break") break;
          throw new Error("left by a throw");
        }
      })();
      const client = await connect(name, { timeout: 5_000 });
      if (how === "break") await within(5_000, loop, "the loop");
      else await assert.rejects(within(5_000, loop, "the loop"), /left by a throw/);
      await client.close();
      // The loop has ended, and the server with it: no instance is left, the name can be taken.
      await assertNameGone(name, `after ${how}`);
      const again = listen(name);
      await again.close();
      assert.equal(await server.accept(), null, "a closed server accepts nothing");
    } finally {
      await within(5_000, server.close(), "server.close()");
    }
    await assertHandlesBack(before, `after leaving the loop by ${how}`);
  });
}

const injected = () => {
  throw new Error("injected: ConnectNamedPipe threw");
};

test("listen() whose first ConnectNamedPipe throws releases that instance: the name is free, no handle left", async () => {
  const before = await settledSnapshot();
  const name = uniqueName("start-throws");
  const restore = inject("ConnectNamedPipe", () => injected);
  try {
    assert.throws(() => listen(name), /injected: ConnectNamedPipe threw/);
  } finally {
    restore();
  }
  await assertNameGone(name, "after the failed listen()");
  const again = listen(name); // had the instance stayed open, the name would be "already in use"
  await again.close();
  await assertHandlesBack(before, "after the failed listen()");
});

test("a next instance whose ConnectNamedPipe throws is released: the server fails, close() resolves, no handle left", async () => {
  const before = await settledSnapshot();
  const name = uniqueName("next-throws");
  const server = listen(name);
  // Waiting when the failure comes, so it gets the error (the connection stays queued).
  const accepting = server.accept();
  // The first instance is listening; the next one, made when a client connects, fails to start.
  const restore = inject("ConnectNamedPipe", () => injected);
  let client;
  try {
    client = await connect(name);
    await assert.rejects(within(5_000, accepting), /injected: ConnectNamedPipe threw/);
  } finally {
    restore();
  }
  // Nothing is left listening to wait for; the queued connection is closed.
  await within(5_000, server.close(), "server.close()");
  await client.close();
  await assertNameGone(name, "after close()");
  await assertHandlesBack(before, "after the failed next instance");
});

test("OverlappedPipe.bind closes an owned handle, once, when making the completion callback throws", () =>
  withDir("bind-fails", async (dir) => {
    // A fresh process: no pipe is bound there yet, so bind() makes the process-wide callback.
    const [exe, args] = scriptCommand(resolve("tests", "win", "peers", "bind_failure.ts"), ["-A"]);
    const e = await run(exe, [...args, uniqueName("bind-fails")], dir, 60_000);
    assert.equal(e.code, 0, `the child exited ${e.code}: ${e.stdout}${e.stderr}`);
    assert.deepEqual(JSON.parse(e.stdout), {
      thrown: "injected: no callback",
      closes: 1,
      connect: "ERROR_FILE_NOT_FOUND",
    });
  }));

test("unref() lets the process end with ConnectNamedPipe or a read pending; without it, or after ref(), it is held", () =>
  withDir("refs", (dir) => checkRefs(() => uniqueName("refs"), dir)));
