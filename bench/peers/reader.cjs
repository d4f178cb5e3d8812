// The one reader every writer in the comparison writes into: Node for Windows' `net` server on a
// named pipe. Each connection is read until EXPECTED bytes have arrived; then the reader records
// {bytes, ms} (ms from the connection to the last byte, so start-up is not in the rate) and closes
// the connection itself. Byte pipes have no half-close, and measured here, Deno's node:net never
// closes after end(), while destroy() after end()'s callback loses bytes in Deno's and Bun's.
const net = require("node:net");
const fs = require("node:fs");
const [pipeName, resultFile, expectedArg] = process.argv.slice(2);
const expected = Number(expectedArg);
const record = (o) => fs.appendFileSync(resultFile, JSON.stringify(o) + "\n");
net.createServer((socket) => {
  const t0 = performance.now();
  let bytes = 0;
  let done = false;
  const finish = (extra) => {
    if (done) return;
    done = true;
    record({ bytes, ms: performance.now() - t0, ...extra });
    socket.destroy();
  };
  socket.on("data", (d) => {
    bytes += d.length;
    if (bytes >= expected) finish();
  });
  socket.on("end", () => finish());
  socket.on("error", (e) => finish({ error: String(e) }));
}).listen(pipeName, () => record({ ready: true }));
