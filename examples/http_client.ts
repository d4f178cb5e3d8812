/**
 * An HTTP/1.1 request over a named pipe, the way a client of a container engine's API sends one
 * (Docker's engine listens on `\\.\pipe\docker_engine`). `node:http` does the HTTP; winpipe
 * gives it the connection through `createConnection`.
 *
 *     deno run -A examples/http_client.ts [pipe] [path]
 *     bun examples/http_client.ts [pipe] [path]
 *
 * Defaults: `\\.\pipe\docker_engine` and `/version`. It prints the status line's code, the
 * content type and the body.
 */
import http from "node:http";
import type { Socket } from "node:net";
import process from "node:process";
import { Duplex } from "node:stream";
import type { ReadableStream, WritableStream } from "node:stream/web";
// In your project: from "@winpipe/winpipe" in Deno, from "winpipe" in Bun.
import { connect } from "../mod.ts";

const [name = String.raw`\\.\pipe\docker_engine`, path = "/version"] = process.argv.slice(2);

const conn = await connect(name, { timeout: 5_000 });
const socket = Duplex.fromWeb({
  readable: conn.readable as ReadableStream,
  writable: conn.writable as WritableStream,
});
try {
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = http.request({
      // The Host header is required by HTTP/1.1; the pipe is the connection.
      host: "localhost",
      path,
      headers: { Accept: "application/json" },
      createConnection: () => socket as Socket,
    }, resolve);
    request.on("error", reject);
    request.end();
  });
  let body = "";
  for await (const chunk of response) body += chunk;
  console.log(response.statusCode, response.headers["content-type"]);
  console.log(body);
} finally {
  await conn.close();
}
