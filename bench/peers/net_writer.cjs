// A peer writer: `node:net` (Node's own, or Deno's or Bun's node:net) writing TOTAL bytes in
// CHUNK-byte writes to a named pipe, honouring backpressure the way a careful user would.
const net = require("node:net");
const [pipeName, chunkArg, totalArg] = process.argv.slice(2);
const chunk = Buffer.alloc(Number(chunkArg), 0x5a);
const total = Number(totalArg);
const socket = net.connect(pipeName, async () => {
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunk.length, total - sent);
    const ok = socket.write(n === chunk.length ? chunk : chunk.subarray(0, n));
    sent += n;
    if (!ok) await new Promise((r) => socket.once("drain", r));
  }
  socket.end(); // the reader closes the connection once it has every byte
});
socket.on("close", () => process.exit(0));
socket.on("error", (e) => {
  // EPIPE/ECONNRESET once the reader has everything and closed is expected; the reader's
  // byte count says whether anything was lost.
  if (e.code !== "EPIPE" && e.code !== "ECONNRESET" && e.code !== "EOF") {
    console.error(e);
    process.exit(1);
  }
});
