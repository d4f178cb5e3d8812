// A child for the ref()/unref() tests, on every OS: it listens on NAME or connects to it, leaves
// an accept or a read pending, applies the calls its mode names, and prints "ready". Whether the
// process then ends by itself is what the test watches.
import process from "node:process";
import { connect, listen } from "../../mod.ts";

const [mode, name] = process.argv.slice(2);
if (mode === "close-twice") {
  // Its own server and client, closed with close() calls that overlap: nothing may be left
  // holding the process (a second close() once armed a closeTimeout timer that nobody cleared).
  const server = listen(name);
  const client = connect(name);
  const accepted = (await server.accept())!;
  const conn = await client;
  await Promise.all([conn.close(), conn.close()]);
  void accepted.writer!.close();
  await accepted.close();
  await server.close();
} else if (mode === "ended-unclosed") {
  // The peer has gone and the end was read; the connection is never closed. Nothing can come
  // on it any more, and nothing is pending: it must not hold the process (as a Deno.Conn does
  // not, and a Unix socket here does not).
  const server = listen(name);
  const client = connect(name);
  const accepted = (await server.accept())!;
  const conn = await client;
  accepted.writer!.write("bye");
  await accepted.close();
  await server.close();
  const buf = new Uint8Array(16);
  while ((await conn.read(buf)) !== null);
} else if (mode === "conn-half-ended") {
  // The peer (the test) has half-closed and keeps its side open; the end was read and nothing
  // is pending, nor closed here: as a Deno.Conn, the connection must not hold the process.
  const conn = await connect(name);
  const buf = new Uint8Array(16);
  while ((await conn.read(buf)) !== null);
} else if (mode.startsWith("server")) {
  const server = listen(name);
  void server.accept().catch(() => {});
  if (mode === "server-unref" || mode === "server-unref-ref") server.unref();
  if (mode === "server-unref-ref") server.ref();
} else {
  const conn = await connect(name);
  // A read that stays pending: the peer never writes.
  void conn.read(new Uint8Array(16)).catch(() => {});
  if (mode === "conn-unref" || mode === "conn-unref-ref") conn.unref();
  if (mode === "conn-unref-ref") conn.ref();
}
console.log("ready");
