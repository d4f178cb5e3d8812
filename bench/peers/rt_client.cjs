// Round-trip client, node:net: COUNT request/response exchanges of SIZE bytes, one at a time.
// Appends {roundTripsPerSec} to the result file.
const net = require("node:net");
const fs = require("node:fs");
const [pipeName, countArg, sizeArg, resultFile] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg);
const request = Buffer.alloc(size, 0x61);
const s = net.connect(pipeName, () => {
  let done = 0;
  let got = 0;
  const t0 = performance.now();
  s.on("data", (d) => {
    got += d.length;
    if (got < size) return;
    got -= size;
    if (++done === count) {
      const ms = performance.now() - t0;
      fs.appendFileSync(
        resultFile,
        JSON.stringify({ roundTripsPerSec: count / (ms / 1000) }) + "\n",
      );
      s.destroy();
      process.exit(0);
    }
    s.write(request);
  });
  s.write(request);
});
s.on("error", (e) => {
  fs.appendFileSync(resultFile, JSON.stringify({ error: String(e) }) + "\n");
  process.exit(1);
});
