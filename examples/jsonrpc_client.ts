/**
 * A JSON-RPC client in the Language Server Protocol's style, with `vscode-jsonrpc` over a pipe
 * connection made into a Node stream by `Duplex.fromWeb`.
 *
 *     deno run -A examples/jsonrpc_client.ts [name]
 *     bun examples/jsonrpc_client.ts [name]
 *
 * It runs `initialize`, `initialized`, `textDocument/didOpen`, `textDocument/hover`, `shutdown`
 * and `exit` against `examples/jsonrpc_server.ts`, and prints the answers.
 */
import process from "node:process";
import { Duplex } from "node:stream";
import type { ReadableStream, WritableStream } from "node:stream/web";
import * as rpc from "vscode-jsonrpc/node.js";
// In your project: from "@winpipe/winpipe" in Deno, from "winpipe" in Bun.
import { connect } from "../mod.ts";

const name = process.argv[2] ?? "winpipe-jsonrpc";

await using conn = await connect(name, { wait: true, timeout: 10_000 });
// Duplex.fromWeb takes any { readable, writable } pair; the casts are for the types only.
const stream = Duplex.fromWeb({
  readable: conn.readable as ReadableStream,
  writable: conn.writable as WritableStream,
});
const rpcConn = rpc.createMessageConnection(
  new rpc.StreamMessageReader(stream),
  new rpc.StreamMessageWriter(stream),
);
rpcConn.listen();

const init = await rpcConn.sendRequest<{ serverInfo: { name: string } }>("initialize", {
  processId: process.pid,
  rootUri: null,
  capabilities: {},
});
console.log(`initialized: ${init.serverInfo.name}`);
await rpcConn.sendNotification("initialized", {});

const uri = "file:///notes.txt";
await rpcConn.sendNotification("textDocument/didOpen", {
  textDocument: { uri, languageId: "plaintext", version: 1, text: "named pipes for Deno and Bun" },
});
const hover = await rpcConn.sendRequest<{ contents: string }>("textDocument/hover", {
  textDocument: { uri },
  position: { line: 0, character: 0 },
});
console.log(`hover: ${hover.contents}`);

await rpcConn.sendRequest("shutdown");
const closed = new Promise<void>((r) => rpcConn.onClose(() => r()));
await rpcConn.sendNotification("exit");
await closed; // the server closes the pipe after "exit"
rpcConn.dispose();
console.log("shut down");
