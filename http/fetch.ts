/**
 * `HttpClient`: `fetch` for a local endpoint, a named pipe or a Unix socket, which neither
 * runtime's `fetch` can reach on Windows. `Request`, `Response` and `Headers`, bodies streamed
 * both ways, keep-alive with a small pool per endpoint, `AbortSignal`. The HTTP is the runtime's
 * own `node:http` client, over winpipe's `connect()`.
 *
 * @module
 */
import {
  Agent,
  type ClientRequest,
  type IncomingMessage,
  request as httpRequest,
  type RequestOptions,
} from "node:http";
import type { Socket } from "node:net";
import { type Duplex, Readable } from "node:stream";
import { connect, type ConnectOptions } from "../core/connection.ts";
import { optionsObject } from "../core/options.ts";
import { connectionDuplex, drainOrClose } from "./duplex.ts";

/** Options for {@link HttpClient}. */
export interface HttpClientOptions {
  /** How `connect()` opens each connection (`timeout`, `wait`, `expectedOwner`, …). */
  connect?: ConnectOptions;
  /** Connections kept per client, busy or idle (default 4). */
  maxConnections?: number;
  /** Keep connections open between requests (default true). */
  keepAlive?: boolean;
}

/**
 * An HTTP/1.1 client for one local endpoint. Idle connections do not keep the process alive.
 *
 * @example The Docker Engine API
 * ```ts
 * import process from "node:process";
 * import { HttpClient } from "@winpipe/winpipe/http";
 *
 * const docker = new HttpClient(
 *   process.platform === "win32" ? String.raw`\\.\pipe\docker_engine` : "/var/run/docker.sock",
 * );
 * const version = await (await docker.fetch("/version")).json();
 * console.log(version.ApiVersion);
 * await docker.close();
 * ```
 */
export class HttpClient {
  /** The endpoint, as given (a bare name, a pipe path or a socket path). */
  readonly name: string;
  readonly #agent: Agent;
  /** Every connection open, idle or busy: close() ends them all. */
  readonly #sockets = new Set<Duplex>();
  #closed = false;

  /** A client for `name`; nothing is opened until the first request. */
  constructor(name: string, options: HttpClientOptions = {}) {
    const where = "HttpClient";
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`${where}: name must be a non-empty string`);
    }
    const o = optionsObject(options, where);
    const max = o.maxConnections ?? 4;
    if (typeof max !== "number" || !Number.isInteger(max) || max < 1) {
      throw new TypeError(`${where}: maxConnections must be a whole number from 1`);
    }
    const connectOptions = (o.connect ?? {}) as ConnectOptions;
    optionsObject(connectOptions, `${where}: connect`);
    this.name = name;
    this.#agent = new Agent({ keepAlive: o.keepAlive !== false, maxSockets: max });
    // node:http asks for a socket and must have it at once: the stream waits for the connect.
    (this.#agent as unknown as { createConnection: () => Socket }).createConnection = () => {
      // After close(), no connection: a request sent again (Deno's node:http resends by itself)
      // fails instead of reaching the server.
      const socket = connectionDuplex(
        this.#closed ? Promise.reject(closedError()) : connect(name, connectOptions),
      );
      socket.on("error", () => {}); // reported through the request
      // Kept here too: the runtimes' agents' destroy() ends only the idle ones.
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
      return socket as unknown as Socket;
    };
  }

  /**
   * Sends a request and resolves with the response once its head has come; the body streams.
   * It waits for a connection (at most `connect.timeout`, 5 s unless set) and then for the
   * server's answer, as long as the server takes: bound that with `init.signal`, for example
   * `AbortSignal.timeout(ms)`.
   * `input` is a path (`"/version"`), a URL whose host is only the `Host` header, or a
   * `Request`.
   *
   * @throws {TypeError} for a malformed input; rejects with the connect's `PipeError`, or the
   * signal's reason.
   *
   * @example
   * ```ts
   * import { HttpClient } from "@winpipe/winpipe/http";
   * const client = new HttpClient("my-app-api");
   * const res = await client.fetch("/items", { method: "POST", body: JSON.stringify({ a: 1 }) });
   * ```
   */
  fetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const { request, options } = prepare(input, init);
    const attempt = (retry: boolean) =>
      new Promise<Response>((resolve, reject) => {
        // deno-lint-ignore prefer-const -- read by the callback, which may run before the call returns
        let sent: Sent | undefined;
        sent = this.#send(request, options, (e) => {
          // A kept-alive connection that the server closed as this request went out (its idle
          // timeout, say): nothing was answered, so a request that may be repeated is, once, on
          // a fresh connection (as browsers and undici do).
          if (
            retry && !this.#closed && sent?.req.reusedSocket && repeatable(request)
            && !request.signal.aborted
          ) {
            resolve(attempt(false));
          } else reject(e);
        });
        sent?.req.on("response", (res) => resolve(responseOf(res, request.method)));
      });
    return attempt(true);
  }

  /**
   * Asks for a connection upgrade (`101 Switching Protocols`) and hands over the raw
   * connection: Docker's hijacked streams for `attach` and `exec`, or any protocol that follows
   * HTTP on the same connection. `Connection: Upgrade` is sent, and `Upgrade: tcp` unless
   * `init.headers` names another protocol. The connection leaves the pool for good.
   * It waits for a connection (at most `connect.timeout`, 5 s unless set) and then for the
   * server's answer, as long as the server takes: bound that with `init.signal`.
   *
   * @throws {TypeError} for a malformed input; rejects with {@link HttpUpgradeError} when the
   * server answers with anything but 101 (its response, body included, is on the error), with
   * the connect's `PipeError`, or with the signal's reason.
   *
   * @example Docker's attach
   * ```ts
   * import { HttpClient } from "@winpipe/winpipe/http";
   * const docker = new HttpClient(String.raw`\\.\pipe\docker_engine`);
   * const id = "my-container";
   * const up = await docker.upgrade(`/containers/${id}/attach?stream=1&stdin=1&stdout=1`, {
   *   method: "POST",
   * });
   * const w = up.writable.getWriter();
   * await w.write(new TextEncoder().encode("ls\n"));
   * for await (const chunk of up.readable) console.log(chunk);
   * ```
   */
  upgrade(input: string | URL | Request, init: RequestInit = {}): Promise<UpgradedConnection> {
    const { request, options } = prepare(input, init, true);
    return new Promise<UpgradedConnection>((resolve, reject) => {
      const sent = this.#send(request, options, reject);
      if (!sent) return;
      sent.req.on("response", (res) => {
        // Not upgraded: the answer, body and all, goes with the error.
        reject(new HttpUpgradeError(responseOf(res, request.method)));
      });
      sent.req.on("upgrade", (res: IncomingMessage, socket: Duplex, head: Uint8Array) => {
        sent.unhook(); // the signal was for the request; the connection is the caller's now
        resolve(upgraded(headersOf(res), socket, head));
      });
    });
  }

  /**
   * Sends `request` through node:http on this client's pool, its body streamed, and its
   * `signal` wired to end it; failures go to `reject`. Undefined when the signal has aborted.
   */
  #send(
    request: Request,
    options: RequestOptions,
    reject: (e: unknown) => void,
  ): Sent | undefined {
    const signal = request.signal;
    if (signal.aborted) {
      reject(signal.reason);
      return undefined;
    }
    const req = httpRequest({ ...options, agent: this.#agent });
    // Rejected here, not only from the request's "error": Deno's node:http emits none when it
    // destroys a request on a kept-alive connection, and the fetch would wait for the answer.
    // A response under way ends with the signal's reason too (its body's reads reject with it),
    // not with node:http's "aborted".
    let res: IncomingMessage | undefined;
    req.once("response", (r: IncomingMessage) => (res = r));
    const onAbort = () => {
      reject(signal.reason);
      res?.destroy(signal.reason);
      req.destroy(signal.reason);
    };
    const unhook = () => signal.removeEventListener("abort", onAbort);
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("close", unhook);
    req.on("error", (e) => reject(signal.aborted ? signal.reason : e));
    if (!request.body) {
      req.end();
      return { req, unhook };
    }
    void (async () => {
      const reader = request.body!.getReader();
      try {
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          if (!req.write(r.value)) await drainOrClose(req);
          if (req.destroyed) throw new Error("the request was ended");
        }
        req.end();
      } catch (e) {
        req.destroy(e as Error);
        await reader.cancel(e).catch(() => {});
      }
    })();
    return { req, unhook };
  }

  /**
   * Closes every connection of the pool at once, idle or busy: requests in flight fail, and so
   * do requests made afterwards ("the HttpClient was closed"). Resolves at once.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#agent.destroy();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    return Promise.resolve();
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The `Request` for `input` and `init` (a malformed one throws its `TypeError` here, at the
 * call), and node:http's options for it; an upgrade asks for one (`Upgrade: tcp` by default).
 */
function prepare(
  input: string | URL | Request,
  init: RequestInit,
  upgrade = false,
): { request: Request; options: RequestOptions } {
  const request = input instanceof Request
    ? new Request(input, init)
    : new Request(new URL(String(input), "http://localhost"), init);
  const url = new URL(request.url);
  const headers: Record<string, string> = {};
  request.headers.forEach((v, k) => (headers[k] = v));
  headers.host ??= url.host || "localhost";
  // A body of known length goes with Content-Length, not chunked: some servers require one.
  const length = request.body ? knownLength(init.body) : undefined;
  if (length !== undefined) headers["content-length"] ??= String(length);
  // fetch's own type for the body (Bun's Request leaves it to its fetch, which is not used here).
  const type = request.body ? bodyType(init.body) : undefined;
  if (type !== undefined) headers["content-type"] ??= type;
  if (upgrade) {
    headers.connection = "Upgrade";
    headers.upgrade ??= "tcp";
  }
  const options = { method: request.method, path: url.pathname + url.search, headers };
  return { request, options };
}

/** The byte length of a body that fetch sends as it is (not a stream, not a form's parts). */
function knownLength(body: RequestInit["body"]): number | undefined {
  if (typeof body === "string") return new TextEncoder().encode(body).byteLength;
  if (body instanceof URLSearchParams) return new TextEncoder().encode(body.toString()).byteLength;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof Blob) return body.size;
  return undefined;
}

/** The Content-Type the Fetch standard gives a body of this kind, if any ("extract a body"). */
function bodyType(body: RequestInit["body"]): string | undefined {
  if (typeof body === "string") return "text/plain;charset=UTF-8";
  if (body instanceof URLSearchParams) return "application/x-www-form-urlencoded;charset=UTF-8";
  if (body instanceof Blob && body.type !== "") return body.type;
  return undefined;
}

/** A request under way: node:http's, and the way to let go of its signal. */
type Sent = { req: ClientRequest; unhook: () => void };

/** What a request on a closed client fails with. */
function closedError(): Error {
  return new Error("the HttpClient was closed");
}

/** Idempotent and bodiless (RFC 9110, 9.2.2): safe to send again when no answer came. */
function repeatable(request: Request): boolean {
  return request.body === null
    && ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].includes(request.method);
}

/** A node:http message's headers, repeated ones kept apart. */
function headersOf(res: IncomingMessage): Headers {
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    headers.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
  }
  return headers;
}

/** node:http's response as a fetch `Response`, its body streamed. */
function responseOf(res: IncomingMessage, method: string): Response {
  const status = res.statusCode ?? 0;
  const empty = method === "HEAD" || status === 204 || status === 304;
  if (empty) res.resume();
  return new Response(empty ? null : Readable.toWeb(res) as unknown as ReadableStream, {
    status,
    statusText: res.statusMessage,
    headers: headersOf(res),
  });
}

/**
 * The server refused an upgrade: its answer is `response`.
 *
 * @example
 * ```ts
 * import { HttpClient, HttpUpgradeError } from "@winpipe/winpipe/http";
 * const docker = new HttpClient(String.raw`\\.\pipe\docker_engine`);
 * try {
 *   await docker.upgrade("/containers/nope/attach?stream=1", { method: "POST" });
 * } catch (e) {
 *   if (e instanceof HttpUpgradeError) console.error((await e.response.json()).message);
 * }
 * ```
 */
export class HttpUpgradeError extends Error {
  /** The server's answer (its body still to be read). */
  readonly response: Response;
  /** An error for the server's answer `response`, which was not a 101. */
  constructor(response: Response) {
    super(`the server did not upgrade the connection: ${response.status} ${response.statusText}`);
    this.name = "HttpUpgradeError";
    this.response = response;
  }
}

/**
 * A connection handed over after `101 Switching Protocols` (see {@link HttpClient.upgrade}).
 *
 * @example
 * ```ts
 * import { HttpClient } from "@winpipe/winpipe/http";
 * const client = new HttpClient("my-app-api");
 * const up = await client.upgrade("/chat", { headers: { upgrade: "my-protocol" } });
 * await up.writable.getWriter().write(new TextEncoder().encode("hello"));
 * const { value } = await up.readable.getReader().read();
 * await up.close();
 * ```
 */
export interface UpgradedConnection {
  /** 101. */
  readonly status: number;
  /** The 101 response's headers (`Upgrade`, and Docker's `Content-Type`). */
  readonly headers: Headers;
  /** What the server sends from now on (the bytes that came behind the 101 first). */
  readonly readable: ReadableStream<Uint8Array>;
  /**
   * What goes to the server; closing it half-closes where the endpoint can (a Unix socket). A
   * write resolves once its bytes are queued below the connection's high-water mark: against a
   * server that stops reading it waits until `close()`, and then rejects.
   */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Closes the connection both ways, and resolves once it is closed: what was written is
   * flushed first, for at most the connection's `closeTimeout` (30 s unless `connect` sets it)
   * when the server stops reading. Never rejects.
   */
  close(): Promise<void>;
}

function upgraded(headers: Headers, socket: Duplex, head: Uint8Array): UpgradedConnection {
  // The readable ends once, at the server's end, an error, or the socket's close (close() and
  // a destroy send no "end": a read pending then would wait for ever).
  let ended = false;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      const end = (e?: unknown) => {
        if (ended) return;
        ended = true;
        if (e === undefined) c.close();
        else c.error(e);
      };
      if (head.byteLength > 0) c.enqueue(new Uint8Array(head));
      socket.on("data", (chunk: Uint8Array) => {
        if (ended) return;
        c.enqueue(new Uint8Array(chunk));
        if ((c.desiredSize ?? 0) <= 0) socket.pause();
      });
      socket.once("end", () => end());
      socket.once("error", (e) => end(e));
      socket.once("close", () => end());
    },
    pull() {
      socket.resume();
    },
    cancel() {
      ended = true;
      socket.destroy();
    },
  }, { highWaterMark: 4 });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return new Promise<void>((ok, fail) => {
        socket.write(chunk, (e) => (e ? fail(e) : ok()));
      });
    },
    close() {
      return new Promise<void>((ok) => socket.end(ok));
    },
    abort() {
      socket.destroy();
    },
  });
  return {
    status: 101,
    headers,
    readable,
    writable,
    close() {
      return new Promise<void>((ok) => {
        if (socket.destroyed) return ok();
        socket.once("close", () => ok());
        socket.destroy();
      });
    },
  };
}
