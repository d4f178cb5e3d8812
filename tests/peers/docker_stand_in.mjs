// A stand-in for the Docker Engine API on a local endpoint, run by Node (not winpipe): Node's own
// HTTP server on the pipe or Unix socket named in argv[2]. It prints "listening on NAME" once it
// listens, and exits once an attach has ended.
//
//   GET  /_ping                      200 "OK", with Api-Version
//   GET  /version                    the engine's version, as Docker's JSON
//   GET  /containers/json            one running container
//   POST /containers/{id}/attach     101 UPGRADED, then Docker's multiplexed stream: what the
//                                    client sends comes back on stdout (stream 1), framed; with
//                                    logs=1, "earlier output" first, in the 101's own write
//   anything else                    404 with Docker's {"message": ...}
import http from "node:http";

const [endpoint] = process.argv.slice(2);
const ID = "c0ffee00d00d" + "0".repeat(52);
const json = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json", "api-version": "1.46" });
  res.end(JSON.stringify(body));
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (req.method === "GET" && url.pathname === "/_ping") {
    res.writeHead(200, { "content-type": "text/plain", "api-version": "1.46" });
    return res.end("OK");
  }
  if (req.method === "GET" && url.pathname === "/version") {
    return json(res, 200, {
      Version: "27.0.0-stand-in",
      ApiVersion: "1.46",
      Os: process.platform === "win32" ? "windows" : "linux",
    });
  }
  if (req.method === "GET" && url.pathname === "/containers/json") {
    return json(res, 200, [{ Id: ID, Names: ["/stand-in"], Image: "alpine", State: "running" }]);
  }
  json(res, 404, { message: `page not found: ${req.method} ${url.pathname}` });
});

// Docker hijacks the connection for attach: a 101, then raw frames of 8-byte headers
// (stream, 0, 0, 0, length as big-endian u32) and the bytes.
server.on("upgrade", (req, socket) => {
  const match = /^\/containers\/([^/]+)\/attach/.exec(new URL(req.url, "http://x").pathname);
  if (req.method !== "POST" || !match || match[1] !== ID) {
    const body = JSON.stringify({ message: `No such container: ${match?.[1] ?? req.url}` });
    socket.end(
      `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${
        Buffer.byteLength(body)
      }\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }
  const head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    + "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
  // logs=1: the container's earlier output comes at once, in the same write as the 101's head,
  // so that the client's HTTP parser reads past the head into the raw stream.
  const logs = new URL(req.url, "http://x").searchParams.get("logs") === "1"
    ? frame(Buffer.from("earlier output\n"))
    : Buffer.alloc(0);
  socket.write(Buffer.concat([Buffer.from(head), logs]));
  socket.on("data", (data) => socket.write(frame(data)));
  socket.on("end", () => socket.end());
  socket.on("error", () => {});
  socket.on("close", () => server.close());
});

/** `data` as a frame on stdout (stream 1). */
function frame(data) {
  const header = Buffer.alloc(8);
  header[0] = 1;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

server.listen(endpoint, () => console.log(`listening on ${endpoint}`));
