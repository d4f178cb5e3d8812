// An independent peer: Node for Windows' `net` server on a named pipe. It reads one connection
// to the end, then writes {bytes, sha256} to the result file and exits.
const net = require("node:net");
const crypto = require("node:crypto");
const fs = require("node:fs");
const [pipeName, resultFile] = process.argv.slice(2);
const server = net.createServer((socket) => {
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  socket.on("data", (d) => {
    bytes += d.length;
    hash.update(d);
  });
  socket.on("end", () => {
    fs.writeFileSync(resultFile, JSON.stringify({ bytes, sha256: hash.digest("hex") }));
    server.close();
  });
  socket.on("error", (e) => {
    fs.writeFileSync(resultFile, JSON.stringify({ error: String(e) }));
    process.exit(1);
  });
});
server.listen(pipeName);
setTimeout(() => {
  fs.writeFileSync(resultFile, JSON.stringify({ error: "timeout" }));
  process.exit(2);
}, 120_000).unref();
