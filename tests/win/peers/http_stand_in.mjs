// A stand-in for a container engine's API on a named pipe, run by node.exe: Node's own HTTP
// server, listening on the pipe named in argv[2]. It answers GET /version with a JSON body like
// Docker's, anything else with 404, and exits after `argv[3]` requests (default 1).
import http from "node:http";

const [name, count = "1"] = process.argv.slice(2);
let left = Number(count);
const server = http.createServer((req, res) => {
  const body = req.method === "GET" && req.url === "/version"
    ? JSON.stringify({ Version: "27.0.0-stand-in", ApiVersion: "1.46", Os: "windows" })
    : JSON.stringify({ message: `page not found: ${req.method} ${req.url}` });
  res.writeHead(req.url === "/version" ? 200 : 404, { "content-type": "application/json" });
  res.end(body);
  if (--left === 0) server.close();
});
server.listen(name, () => console.log(`listening on ${name}`));
