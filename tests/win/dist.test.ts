// The built npm package (dist/, from `npm run build`) imported as a script would: a round trip.
import assert from "node:assert/strict";
import { test } from "node:test";
// @ts-types="../../dist/mod.d.ts"
import { PipeError, PipeWriter } from "../../dist/mod.js";
import { ServerEnd, uniqueName, within } from "./server_end.ts";

test("dist/mod.js writes to a real pipe and reports errors as PipeError", async () => {
  const name = uniqueName("dist");
  const server = ServerEnd.create(name);
  const connected = server.connect();
  const w = await PipeWriter.open(name);
  await connected;
  w.write("from the built package");
  await w.close();
  assert.equal(
    new TextDecoder().decode((await within(5_000, server.read()))!),
    "from the built package",
  );
  await server.close();
  await assert.rejects(PipeWriter.open(uniqueName("dist-missing")), (e: unknown) => {
    assert.ok(e instanceof PipeError);
    assert.equal(e.code, "ERROR_FILE_NOT_FOUND");
    return true;
  });
});
