// README "Usage": a file as a stream, in Deno. The test listens on \\.\pipe\my-app and runs this
// in a directory that has big.bin.
import { PipeWriter } from "../../../mod.ts";

const w = await PipeWriter.open("my-app");
const file = await Deno.open("big.bin");
await file.readable.pipeTo(w.writable); // backpressure end to end; closes the writer at the end
