// An independent client: Node for Windows' `net` connects to our server, sends SIZE bytes,
// reads the echo to the end, and writes {sent, received, same} to the result file.
const net = require("node:net");
const fs = require("node:fs");
const [pipeName, sizeArg, resultFile] = process.argv.slice(2);
const size = Number(sizeArg);
const data = Buffer.alloc(size);
for (let i = 0; i < size; i++) data[i] = (i * 7 + 3) & 0xff;
const chunks = [];
const socket = net.connect(pipeName, () => {
  socket.write(data);
});
socket.on("data", (d) => {
  chunks.push(d);
  // Everything came back: close (a pipe has no half-close for end() to signal).
  if (chunks.reduce((n, c) => n + c.length, 0) >= size) socket.destroy();
});
socket.on("close", () => {
  const echoed = Buffer.concat(chunks);
  fs.writeFileSync(
    resultFile,
    JSON.stringify({ sent: size, received: echoed.length, same: echoed.equals(data) }),
  );
});
socket.on("error", (e) => fs.writeFileSync(resultFile, JSON.stringify({ error: String(e) })));
