// README "Node streams": a connection through Duplex.fromWeb into vscode-jsonrpc. The test runs
// examples/jsonrpc_server.ts on \\.\pipe\my-language-server first; after the README's lines, this
// asks it something and ends the session.
import { Duplex } from "node:stream";
import type { ReadableStream, WritableStream } from "node:stream/web";
import * as rpc from "vscode-jsonrpc/node.js";
import { connect } from "../../../mod.ts"; // "winpipe" in Bun

await using conn = await connect(String.raw`\\.\pipe\my-language-server`);
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
  processId: null,
  rootUri: null,
  capabilities: {},
});
await rpcConn.sendRequest("shutdown");
const closed = new Promise<void>((r) => rpcConn.onClose(() => r()));
await rpcConn.sendNotification("exit");
await closed;
rpcConn.dispose();
console.log(init.serverInfo.name);
