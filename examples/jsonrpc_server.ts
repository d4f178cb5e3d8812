/**
 * A JSON-RPC server speaking the Language Server Protocol's framing (`Content-Length` headers),
 * with `vscode-jsonrpc` over a pipe connection made into a Node stream by `Duplex.fromWeb`.
 *
 *     deno run -A examples/jsonrpc_server.ts [name] [--once]
 *     bun examples/jsonrpc_server.ts [name] [--once]
 *
 * The name defaults to `winpipe-jsonrpc`, a bare name: `\\.\pipe\winpipe-jsonrpc` on Windows, and a
 * socket in a directory of this user's on Linux and macOS (`pipePath()` says where).
 *
 * It answers `initialize`, remembers documents from `textDocument/didOpen`, answers
 * `textDocument/hover` with a word count, and closes the connection on `exit`, as a language
 * server does. `--once` serves one client and exits. The client is `examples/jsonrpc_client.ts`.
 */
import process from "node:process";
import { Duplex } from "node:stream";
import type { ReadableStream, WritableStream } from "node:stream/web";
import * as rpc from "vscode-jsonrpc/node.js";
// In your project: from "@winpipe/winpipe" in Deno, from "winpipe" in Bun.
import { listen, type PipeConnection } from "../mod.ts";

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith("--")) ?? "winpipe-jsonrpc";

/** The connection as a Node `Duplex` (the casts: Node's web-stream types and the DOM's differ). */
function nodeDuplex(conn: PipeConnection): Duplex {
  return Duplex.fromWeb({
    readable: conn.readable as ReadableStream,
    writable: conn.writable as WritableStream,
  });
}

function serve(conn: PipeConnection): Promise<void> {
  const stream = nodeDuplex(conn);
  const rpcConn = rpc.createMessageConnection(
    new rpc.StreamMessageReader(stream),
    new rpc.StreamMessageWriter(stream),
  );
  const documents = new Map<string, string>();
  rpcConn.onRequest("initialize", () => ({
    capabilities: { hoverProvider: true, textDocumentSync: 1 },
    serverInfo: { name: "winpipe-example", version: "1.0.0" },
  }));
  rpcConn.onNotification(
    "textDocument/didOpen",
    (p: { textDocument: { uri: string; text: string } }) =>
      documents.set(p.textDocument.uri, p.textDocument.text),
  );
  rpcConn.onRequest("textDocument/hover", (p: { textDocument: { uri: string } }) => {
    const text = documents.get(p.textDocument.uri);
    if (text === undefined) return null;
    return { contents: `${text.split(/\s+/).filter(Boolean).length} words` };
  });
  rpcConn.onRequest("shutdown", () => null);
  return new Promise((resolve) => {
    rpcConn.onNotification("exit", async () => {
      rpcConn.dispose();
      await conn.close(); // flushes the replies already written, then closes the pipe
      resolve();
    });
    rpcConn.onClose(() => resolve()); // the client went without "exit"
    rpcConn.listen();
  });
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
