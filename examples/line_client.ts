/**
 * The client of `examples/line_server.ts`: sends commands, one per line, and prints the replies.
 *
 *     deno run -A examples/line_client.ts [name] [command...]
 *     bun examples/line_client.ts [name] [command...]
 *
 * Without commands it sends `upper hello, pipe`, `add 2 40` and `quit`. It reads replies until
 * the server closes the connection after `bye`: the pipe has no half-close, so the client does
 * not close its end to say "done"; the `quit` line says it.
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
// In your project: from "@winpipe/winpipe" in Deno, from "winpipe" in Bun.
import { connect } from "../mod.ts";

const [name = "winpipe-lines", ...given] = process.argv.slice(2);
const commands = given.length ? given : ["upper hello, pipe", "add 2 40", "quit"];

// wait: the server may not have made the pipe yet; give up after 10 s.
await using conn = await connect(name, { wait: true, timeout: 10_000 });
for (const command of commands) conn.writer!.write(`${command}\n`);

const replies = createInterface({
  input: Readable.fromWeb(conn.readable as NodeReadableStream),
  crlfDelay: Infinity,
});
for await (const line of replies) console.log(line); // ends when the server closes
