// The servers of the HTTP bench (bench/compare_http.mjs), in Deno or Bun: each answers every
// request with a small text body, on the Unix socket PATH, and writes READY_FILE once it listens.
//
//   http_server.ts winpipe PATH READY_FILE   winpipe's serve()
//   http_server.ts native PATH READY_FILE    Deno.serve({ path }) or Bun.serve({ unix })
import { writeFileSync } from "node:fs";
import process from "node:process";
import { serve } from "../../http/mod.ts";

const [kind, path, ready] = process.argv.slice(2);
const hello = () => new Response("hello, world\n", { headers: { "content-type": "text/plain" } });
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
if (kind === "winpipe") {
  serve(path, hello);
} else if (g.Deno) {
  await new Promise<void>((onListen) => g.Deno.serve({ path, onListen: () => onListen() }, hello));
} else {
  g.Bun.serve({ unix: path, fetch: hello });
}
writeFileSync(ready, "ready");
