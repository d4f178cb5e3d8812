// README "Clients and servers": the echo server and the client, together.
import { connect, listen } from "../../../mod.ts"; // "winpipe" in Bun

// The server. listen() keeps an instance listening at all times: it creates the next instance
// before handing out a connected one, so a client never sees ERROR_FILE_NOT_FOUND from a live
// server.
const server = listen("echo");
(async () => {
  for await (const conn of server) {
    // Handle each connection on its own, and keep accepting.
    // An echo: pipeTo() copies until the client closes, then closes conn.writable.
    conn.readable.pipeTo(conn.writable)
      .catch(console.error)
      .finally(() => conn.close());
  }
})();

// The client: a line out, a line back; the newline says where the reply ends.
await using conn = await connect("echo", { timeout: 2_000 });
conn.writer!.write("hello\n");
const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
let reply = "";
while (!reply.includes("\n")) {
  const { value, done } = await reader.read();
  if (done) break;
  reply += value;
}
console.log(reply.trimEnd()); // "hello"
reader.releaseLock();
await server.close();
