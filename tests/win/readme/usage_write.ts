// README "Usage": write with backpressure. The test listens on \\.\pipe\my-app first.
const lines = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`);

import { PipeError, PipeWriter } from "../../../mod.ts"; // "winpipe" in Bun

await using w = await PipeWriter.open("my-app", { timeout: 5_000 });

for (const line of lines) {
  // write() queues a copy; false means "wait for room": drained() rejects if the peer goes
  if (!w.write(line)) await w.drained();
}
await w.flush(); // every byte is in the pipe
// leaving the block closes the writer: flush, then release

void PipeError;
