// A child process that uses a pipe handle inherited from its parent: the README's fromHandle
// snippets, as they stand. argv[2] is "write" or "read"; PIPE_HANDLE is the handle's value.
import process from "node:process";
import { PipeReader, PipeWriter } from "../../../mod.ts";

if (process.argv[2] === "read") {
  const handle = BigInt(process.env.PIPE_HANDLE!); // the value the parent passed
  const reader = PipeReader.fromHandle(handle, { owned: true });
  const text = await new Response(reader.readable).text();
  console.log(text);
} else {
  const w = PipeWriter.fromHandle(BigInt(process.env.PIPE_HANDLE!), { owned: true });
  w.write("from the child");
  await w.close(); // flushes, then closes the handle
}
