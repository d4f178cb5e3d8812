// An independent server: Node for Windows' `net` echoes every connection on PIPE, then exits
// after the first connection closes. Writes {ready} to the result file when listening.
const net = require("node:net");
const fs = require("node:fs");
const [pipeName, resultFile] = process.argv.slice(2);
const server = net.createServer((socket) => {
  socket.pipe(socket);
  socket.on("close", () => server.close());
  socket.on("error", () => {});
});
server.listen(pipeName, () => fs.writeFileSync(resultFile, JSON.stringify({ ready: true })));
setTimeout(() => process.exit(2), 120_000).unref();
