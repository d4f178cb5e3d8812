// A client of tests/win/echo_server.test.ts that streams until it is killed: it writes 64 KiB
// blocks to the echo server as fast as the pipe takes them and reads the echo back, and prints
// "streaming" once echoed bytes have come back.
//
//   <runtime> tests/win/peers/echo_streamer.ts PIPE_NAME
import process from "node:process";
import { connect } from "../../../mod.ts";

const conn = await connect(process.argv[2], { timeout: 10_000 });
const block = new Uint8Array(64 * 1024).fill(0x2a);
let echoed = 0;
void (async () => {
  const reader = conn.readable.getReader();
  for (let r; !(r = await reader.read()).done;) {
    if (echoed === 0) console.log("streaming");
    echoed += r.value.byteLength;
  }
})();
for (;;) {
  if (!conn.writer!.write(block)) await conn.writer!.flush();
}
