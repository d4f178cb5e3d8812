// An independent peer: Node for Windows' `net` server on a named pipe. It reads one connection
// to the end, then writes {bytes, sha256, ms} to the result file and exits. `ms` is the time from
// the connection to its end, so a rate can be computed without process start-up in it.
const net = require("node:net");
const crypto = require("node:crypto");
const fs = require("node:fs");
const [pipeName, resultFile] = process.argv.slice(2);
const server = net.createServer((socket) => {
  const t0 = performance.now();
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  socket.on("data", (d) => {
    bytes += d.length;
    hash.update(d);
  });
  socket.on("end", () => {
    const ms = performance.now() - t0;
    fs.writeFileSync(resultFile, JSON.stringify({ bytes, sha256: hash.digest("hex"), ms }));
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
