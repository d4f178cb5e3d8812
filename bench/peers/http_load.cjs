// The HTTP load under Windows (bench/http_windows.ts), run by Node: CONNS loops, each one small
// GET at a time on a kept-alive connection to the pipe PIPE, for SECONDS; appends
// {"requestsPerSec":R,"reconnects":N} to RESULT_FILE. A new connection made after the first ones
// counts as a reconnect.
const http = require("node:http");
const fs = require("node:fs");
const [pipe, conns = "4", seconds = "3", result] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conns) });
let sockets = 0;
const get = () =>
  new Promise((resolve, reject) => {
    const req = http.request({ socketPath: pipe, path: "/hello", agent }, (res) => {
      res.on("data", () => {});
      res.on(
        "end",
        () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))),
      );
    });
    req.on("socket", (s) => {
      if (!s.counted) {
        s.counted = true;
        sockets++;
      }
    });
    req.on("error", reject);
    req.end();
  });
(async () => {
  const start = performance.now();
  const end = start + Number(seconds) * 1000;
  let requests = 0;
  await Promise.all(Array.from({ length: Number(conns) }, async () => {
    while (performance.now() < end) {
      await get();
      requests++;
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  fs.appendFileSync(
    result,
    JSON.stringify({
      requestsPerSec: requests / elapsed,
      reconnects: Math.max(0, sockets - Number(conns)),
    }) + "\n",
  );
  agent.destroy();
})().catch((e) => {
  fs.appendFileSync(result, JSON.stringify({ error: String(e.message ?? e) }) + "\n");
  process.exit(1);
});
