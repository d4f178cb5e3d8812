// README "Usage": giving up on a peer that stops reading. The test listens on \\.\pipe\my-app,
// accepts, and never reads.
import { PipeWriter } from "../../../mod.ts";

const w = await PipeWriter.open("my-app");
const endless = new ReadableStream<Uint8Array>({
  pull: (c) => c.enqueue(new Uint8Array(64 * 1024)),
});
const signal = AbortSignal.timeout(1_000);
try {
  // addAbortSignal stops the writer at once; pipeTo alone would wait for the write in progress.
  await endless.pipeTo(w.addAbortSignal(signal).writable, { signal });
} catch (e) {
  console.log((e as DOMException).name); // "TimeoutError"
}
