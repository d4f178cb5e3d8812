// The README's echo server ("Clients and servers") as a program, for tests/win/echo_server.test.ts:
// the server part of that block word for word but for the pipe's name, which is argv[2]
// (tests/readme_sync.test.ts checks). Prints "listening" once it listens, then serves until it is
// killed.
//
//   <runtime> tests/win/peers/echo_server.ts PIPE_NAME
import process from "node:process";
import { listen } from "../../../mod.ts";

// The server. listen() keeps an instance listening at all times: it creates the next instance
// before handing out a connected one, so a client never sees ERROR_FILE_NOT_FOUND from a live
// server.
const server = listen(process.argv[2]);
(async () => {
  for await (const conn of server) {
    // Handle each connection on its own, and keep accepting.
    // An echo: pipeTo() copies until the client closes, then closes conn.writable.
    conn.readable.pipeTo(conn.writable)
      .catch(console.error)
      .finally(() => conn.close());
  }
})();

console.log("listening");
