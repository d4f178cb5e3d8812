// Round-trip server, node:net (Node's, Deno's or Bun's): echoes every byte back.
const net = require("node:net");
const fs = require("node:fs");
const [pipeName, readyFile] = process.argv.slice(2);
net.createServer((s) => {
  s.on("data", (d) => s.write(d));
  s.on("error", () => {});
}).listen(pipeName, () => fs.writeFileSync(readyFile, "ready"));
