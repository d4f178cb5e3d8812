/**
 * A Docker Engine API client over the engine's local endpoint: `\\.\pipe\docker_engine` on
 * Windows, `/var/run/docker.sock` elsewhere (or the endpoint given). It pings the engine, prints
 * its version and the running containers, then attaches to one: the connection is upgraded
 * (`101 UPGRADED`) and carries Docker's multiplexed stream, which this splits into stdout and
 * stderr.
 *
 *     deno run -A examples/docker.ts [endpoint] [container]
 *     bun examples/docker.ts [endpoint] [container]
 *
 * Attaching sends one line to the container's stdin (try a container running `cat`:
 * `docker run -di --name echo alpine cat`) and prints what comes back.
 */
import process from "node:process";
// In your project: from "@winpipe/winpipe/http" in Deno, from "winpipe/http" in Bun.
import { HttpClient } from "../http/mod.ts";

const endpoint = process.argv[2]
  ?? (process.platform === "win32" ? String.raw`\\.\pipe\docker_engine` : "/var/run/docker.sock");
const docker = new HttpClient(endpoint);

/** Docker's attach stream: 8-byte headers (stream, 0, 0, 0, big-endian length), then bytes. */
async function* frames(stream: ReadableStream<Uint8Array>) {
  let buffered = new Uint8Array(0);
  for await (const chunk of stream) {
    const joined = new Uint8Array(buffered.byteLength + chunk.byteLength);
    joined.set(buffered);
    joined.set(chunk, buffered.byteLength);
    buffered = joined;
    while (buffered.byteLength >= 8) {
      const size = new DataView(buffered.buffer, buffered.byteOffset).getUint32(4);
      if (buffered.byteLength < 8 + size) break;
      yield { stream: buffered[0] === 2 ? "stderr" : "stdout", data: buffered.slice(8, 8 + size) };
      buffered = buffered.slice(8 + size);
    }
  }
}

try {
  const ping = await docker.fetch("/_ping");
  console.log(`ping: ${await ping.text()} (API ${ping.headers.get("api-version")})`);
  const version = await (await docker.fetch("/version")).json();
  console.log(`engine ${version.Version}, API ${version.ApiVersion}, ${version.Os}`);
  const containers = await (await docker.fetch("/containers/json")).json();
  for (const c of containers) {
    console.log(`container ${c.Id.slice(0, 12)} ${c.Names[0]} ${c.State}`);
  }

  const id = process.argv[3] ?? containers[0]?.Id;
  if (id) {
    const attached = await docker.upgrade(
      `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`,
      { method: "POST" },
    );
    const stdin = attached.writable.getWriter();
    await stdin.write(new TextEncoder().encode("hello from winpipe\n"));
    for await (const { stream, data } of frames(attached.readable)) {
      console.log(`${stream}: ${new TextDecoder().decode(data).trimEnd()}`);
      break; // one answer is enough here
    }
    await attached.close();
  }
} finally {
  await docker.close();
}
