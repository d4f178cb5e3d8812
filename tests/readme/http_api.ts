import { HttpClient, serve } from "../../http/mod.ts";

// The server: an app's local API, on a pipe (Windows) or a socket only this user can reach.
const server = serve("my-app-api", (request, info) => {
  const url = new URL(request.url);
  if (url.pathname === "/echo") return new Response(request.body);
  return Response.json({ path: url.pathname, peerUser: info.peerUser ?? null });
});

// The client: fetch for that endpoint, with keep-alive.
const client = new HttpClient("my-app-api");
console.log(await (await client.fetch("/status")).json());
const echoed = await client.fetch("/echo", { method: "POST", body: "hello" });
console.log(await echoed.text()); // hello

await client.close();
await server.shutdown();
