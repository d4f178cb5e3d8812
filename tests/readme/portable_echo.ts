import { connect, listen } from "../../mod.ts"; // "winpipe" in Bun

// The server: \\.\pipe\my-echo on Windows, a socket in a private directory elsewhere.
const server = listen("my-echo");
(async () => {
  for await (const conn of server) {
    conn.readable.pipeTo(conn.writable).catch(console.error); // echo, then close
  }
})();

// The client: the same name, on every OS.
const conn = await connect("my-echo");
await conn.write(new TextEncoder().encode("hello, every OS\n"));
const reply = new Uint8Array(64);
const n = await conn.read(reply);
console.log(new TextDecoder().decode(reply.subarray(0, n ?? 0)).trim());
await conn.close();
await server.close();
