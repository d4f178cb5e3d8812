// The child: serves one connection on a named pipe with node:net and consumes it slowly,
// 4 KiB every 1 ms, until the end of the stream. What arrives is queued; the socket is paused
// while 16 KiB or more wait, so the writer meets backpressure. Prints the byte count on stdout
// and exits 0, or exits 3 if the count is not the one expected.
//
//   deno run -A child.mjs PIPE_NAME EXPECTED_BYTES
import net from "node:net";
import process from "node:process";

const [name, expectedArg] = process.argv.slice(2);
const expected = Number(expectedArg);
const HIGH = 16 * 1024;

const server = net.createServer((sock) => {
  server.close();
  const queue = [];
  let queued = 0;
  let received = 0;
  let ended = false;
  sock.on("data", (d) => {
    queue.push(d);
    queued += d.length;
    if (queued >= HIGH) sock.pause();
  });
  sock.on("end", () => (ended = true));
  sock.on("error", (e) => console.error(`child: socket error: ${e.message}`));
  const timer = setInterval(() => {
    // Take 4 KiB.
    for (let want = 4096; want > 0 && queue.length;) {
      const head = queue[0];
      const n = Math.min(want, head.length);
      if (n === head.length) queue.shift();
      else queue[0] = head.subarray(n);
      queued -= n;
      received += n;
      want -= n;
    }
    if (queued < HIGH && sock.isPaused() && !ended) sock.resume();
    if (ended && queued === 0) {
      clearInterval(timer);
      sock.destroy();
      console.log(`received ${received}`);
      process.exitCode = received === expected ? 0 : 3;
    }
  }, 1);
});
server.listen(name, () => console.log("listening"));
