/**
 * HTTP over local IPC, both ways, on every OS: {@link serve} answers HTTP/1.1 on a named pipe
 * (Windows) or a Unix socket (Linux, macOS), which `Deno.serve` and `Bun.serve` cannot do on a
 * pipe; {@link HttpClient} is `fetch` for such an endpoint, which neither runtime's `fetch` can
 * reach on Windows. Names are `connect()`'s and `listen()`'s: a bare name means the same
 * endpoint everywhere, and the endpoint's secure defaults apply. The HTTP itself is the
 * runtime's `node:http`, over winpipe's connections.
 *
 * @example A local API and its client
 * ```ts
 * import { HttpClient, serve } from "@winpipe/winpipe/http";
 *
 * const server = serve("my-app-api", () => Response.json({ ok: true }));
 * const client = new HttpClient("my-app-api");
 * console.log(await (await client.fetch("/status")).json()); // { ok: true }
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */
// The types its signatures use, so that this entry point documents itself.
export type * from "../mod.ts";
export { connectionDuplex, type DuplexHooks, type PipeSocket } from "./duplex.ts";
export {
  HttpClient,
  type HttpClientOptions,
  HttpUpgradeError,
  type UpgradedConnection,
} from "./fetch.ts";
export {
  type HttpServer,
  serve,
  type ServeHandler,
  type ServeInfo,
  type ServeOptions,
  type ShutdownOptions,
} from "./serve.ts";
