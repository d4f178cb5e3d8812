// Who is at the other end, against real kernel32: expectedOwner (the pipe's owner SID, checked
// before a byte is exchanged) and peerUser (the peer process's user SID). Every process here runs
// as one user, so a squatter of another user is shown by an expected SID that is not ours; that a
// pipe made by another user reads as theirs is Windows' to check, with two accounts.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { connect, listen, PipeError, PipeWriter } from "../../mod.ts";
import { ownerSid } from "../../windows/owner.ts";
import { currentUserSid } from "../../windows/security_descriptor.ts";
import { assertHandlesBack, settledSnapshot } from "./handles.ts";
import { uniqueName, within } from "./server_end.ts";

const SYSTEM = "S-1-5-18";

test('a server\'s pipe is owned by this user, and expectedOwner "self" or that SID accepts it', async () => {
  const name = uniqueName("owner-ok");
  await using server = listen(name);
  const got = server.accept();
  for (const expectedOwner of ["self", currentUserSid(), currentUserSid().toLowerCase()]) {
    const conn = await connect(name, { expectedOwner });
    assert.equal(ownerSid(conn.handle!, name), currentUserSid());
    await conn.close();
  }
  await (await got)?.close();
});

test("expectedOwner refuses a pipe owned by someone else, names both SIDs, and leaves no handle", async () => {
  const name = uniqueName("owner-refused");
  await using server = listen(name);
  const accepted = (async () => {
    for await (const c of server) await c.close();
  })();
  const before = await settledSnapshot();
  for (
    const open of [
      () => connect(name, { expectedOwner: SYSTEM }),
      () => PipeWriter.open(name, { expectedOwner: SYSTEM }),
    ]
  ) {
    await assert.rejects(open(), (e: unknown) => {
      assert.ok(e instanceof PipeError, String(e));
      assert.equal(e.code, "ERROR_ACCESS_DENIED");
      assert.equal(e.syscall, "connect");
      assert.match(
        e.message,
        new RegExp(`owned by ${currentUserSid()}, not by the expected owner ${SYSTEM}`),
      );
      return true;
    });
  }
  await assertHandlesBack(before, "refused by expectedOwner");
  await server.close();
  await within(10_000, accepted, "the server loop");
});

test('expectedOwner takes "self" or a SID string on Windows, and says so', async () => {
  for (const bad of [0, 1000, "root", "S-1", "", null]) {
    await assert.rejects(
      connect(uniqueName("owner-bad"), { expectedOwner: bad as never }),
      (e: unknown) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, /expectedOwner on Windows must be "self" or a SID string/);
        return true;
      },
    );
  }
});

test("peerUser is the peer process's user SID, on both ends", async () => {
  const name = uniqueName("peer-user");
  await using server = listen(name);
  const got = server.accept();
  const client = await connect(name);
  const conn = (await got)!;
  assert.equal(conn.peerProcessId, process.pid);
  assert.equal(conn.peerUser, currentUserSid());
  assert.equal(client.peerUser, currentUserSid());
  await client.close();
  await conn.close();
});
