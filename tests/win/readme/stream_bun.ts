// README "Usage": a file as a stream, in Bun. The test listens on \\.\pipe\my-app and runs this
// in a directory that has big.bin.
import { PipeWriter } from "../../../mod.ts";

const w = await PipeWriter.open("my-app");
await Bun.file("big.bin").stream().pipeTo(w.writable); // closes the writer at the end
