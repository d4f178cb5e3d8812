// Node's own http server for the HTTP bench (bench/compare_http.mjs): a small text body for every
// request, on the Unix socket argv[2]; writes argv[3] once it listens.
const http = require("node:http");
const fs = require("node:fs");
const [path, ready] = process.argv.slice(2);
http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("hello, world\n");
}).listen(path, () => fs.writeFileSync(ready, "ready"));
