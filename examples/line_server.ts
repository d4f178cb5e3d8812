/**
 * A line-oriented server: one command per line in, one reply per line out.
 *
 *     deno run -A examples/line_server.ts [name] [--once]
 *     bun examples/line_server.ts [name] [--once]
 *
 * The name defaults to `winpipe-lines`, a bare name: `\\.\pipe\winpipe-lines` on Windows, and a
 * socket in a directory of this user's on Linux and macOS (`pipePath()` says where).
 *
 * Commands: `upper TEXT`, `add A B`, and `quit`, which the server answers with `bye` before it
 * closes the connection. A byte pipe has no half-close, so the protocol itself says where a
 * conversation ends (here the `quit` line); the client then reads until the server closes.
 * `--once` serves one client and exits. The client is `examples/line_client.ts`.
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
// In your project: from "@winpipe/winpipe" in Deno, from "winpipe" in Bun.
import { listen, type PipeConnection } from "../mod.ts";

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith("--")) ?? "winpipe-lines";

function reply(line: string): string {
  const [command, ...rest] = line.trim().split(/\s+/);
  switch (command) {
    case "upper":
      return line.trim().slice("upper".length).trim().toUpperCase();
    case "add":
      return String(rest.reduce((sum, n) => sum + Number(n), 0));
    case "quit":
      return "bye";
    default:
      return `error: unknown command ${JSON.stringify(command)}`;
  }
}

async function serve(conn: PipeConnection): Promise<void> {
  try {
    const lines = createInterface({
      input: Readable.fromWeb(conn.readable as NodeReadableStream),
      crlfDelay: Infinity,
    });
    for await (const line of lines) {
      const answer = reply(line);
      // write() queues a copy; false asks the caller to wait for room (drained() rejects if the
      // client leaves meanwhile).
      if (!conn.writer!.write(`${answer}\n`)) await conn.writer!.drained();
      if (answer === "bye") break;
    }
  } finally {
    await conn.close(); // flushes the replies, then closes: the client's read ends
  }
}

await using server = listen(name);
console.log(`listening on ${name}`);
for await (const conn of server) {
  if (args.includes("--once")) {
    await serve(conn);
    break;
  }
  serve(conn).catch((e) => console.error("connection failed:", e));
}
