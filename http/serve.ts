/**
 * `serve()`: an HTTP/1.1 server on a named pipe or a Unix socket, with `Deno.serve`'s shape: a
 * handler from `Request` to `Response`, bodies streamed both ways, keep-alive, a graceful
 * `shutdown()`. The endpoint is winpipe's `listen()` (so its secure defaults hold); the HTTP is
 * the runtime's own `node:http`, fed each connection as a stream (`connectionDuplex`).
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { optionsObject, timeoutValue } from "../core/options.ts";
import { listen, type ListenOptions, type PipeServer } from "../core/server.ts";
import { longTimeout, type Timer } from "../core/timeouts.ts";
import { connectionDuplex, drainOrClose, type PipeSocket } from "./duplex.ts";

/** Who is asking: what the endpoint knows of the peer. */
export interface ServeInfo {
  /** The endpoint's address (`\\.\pipe\NAME` or the socket's path). */
  readonly path: string;
  /** The client's process id (Windows), or undefined. */
  readonly peerProcessId: number | undefined;
  /** The client's user: a SID on Windows, or undefined. */
  readonly peerUser: string | undefined;
}

/** A request handler, as `Deno.serve` takes. */
export type ServeHandler = (request: Request, info: ServeInfo) => Response | Promise<Response>;

/** Options for {@link serve}: the endpoint's (`listen`'s) and the HTTP server's. */
export interface ServeOptions extends ListenOptions {
  /**
   * Makes the response when the handler throws (default: a plain 500). Also told of failures
   * that no response can report (a client that left mid-body).
   */
  onError?: (error: unknown) => Response | Promise<Response>;
  /** Shuts the server down gracefully when it aborts. */
  signal?: AbortSignal;
  /** The largest request body in bytes; beyond it, 413 (default: no limit). */
  maxBodySize?: number;
  /** The largest request head in bytes; beyond it, 431 (default 16 KiB). */
  maxHeaderSize?: number;
  /**
   * How long a client may take to send a request's head, in ms, from its first byte (default
   * 10 000). Past it, 408 and the connection closes: a client that trickles its headers
   * (slowloris) holds a connection no longer than this.
   */
  headersTimeout?: number;
  /**
   * How long a connection may stay idle, in ms, before its first request and between requests
   * (default 5 000). Past it, the connection closes.
   */
  keepAliveTimeout?: number;
}

/** A running server (see {@link serve}). */
export interface HttpServer {
  /** The endpoint's address. */
  readonly path: string;
  /** Settles when the server has shut down and every connection is closed. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting; requests in flight finish, idle connections close, and new requests on
   * open connections get `Connection: close`. Resolves with `finished`. It waits for each
   * handler in flight to return and for its response body to be written out: a handler that
   * never returns, an event stream, or a client that stops reading a long body holds it as long
   * as that lasts. With `timeout` (milliseconds), the connections still open when it runs out
   * are closed (their requests' `signal`s abort, their bodies are cancelled), so none of them
   * holds it longer; `timeout: 0` closes them at once. A later call may shorten the bound.
   * Rejects only for bad options.
   *
   * @example Give requests in flight 10 s
   * ```ts
   * import { serve } from "@winpipe/winpipe/http";
   * const server = serve("my-app-api", () => new Response("ok"));
   * await server.shutdown({ timeout: 10_000 });
   * ```
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /** `shutdown()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Bytes of a request body read ahead of the handler. */
const BODY_QUEUE = 64 * 1024;

/** What {@link HttpServer.shutdown} takes. */
export interface ShutdownOptions {
  /**
   * Milliseconds to wait for requests in flight before their connections are closed
   * (default `Infinity`: as long as they take).
   */
  timeout?: number;
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
};

/** A response with no body that ends the connection, written straight to the socket. */
function rawResponse(status: number): string {
  return `HTTP/1.1 ${status} ${
    STATUS_TEXT[status]
  }\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}

/**
 * Writes a last response and closes the connection once it is out. Ending the writing side is
 * not enough: a pipe has no half-close, so the client would see no end, and would go on sending.
 */
function endWith(socket: PipeSocket, response: string): void {
  socket.end(response, () => socket.destroy());
}

/**
 * Serves HTTP/1.1 on a local endpoint: a bare name, a pipe path or a socket path, as `listen()`
 * takes (its options and secure defaults apply). Malformed requests get 400, oversized heads 431,
 * oversized bodies 413 (with `maxBodySize`); none of them takes the server down.
 *
 * @example An app's local API
 * ```ts
 * import { serve } from "@winpipe/winpipe/http";
 *
 * const server = serve("my-app-api", (request, info) => {
 *   const url = new URL(request.url);
 *   return Response.json({ path: url.pathname, user: info.peerUser ?? null });
 * });
 * // later:
 * await server.shutdown();
 * ```
 */
export function serve(
  name: string,
  handler: ServeHandler,
  options: ServeOptions = {},
): HttpServer {
  const where = "serve()";
  if (typeof handler !== "function") {
    throw new TypeError(`${where}: handler must be a function, got ${typeof handler}`);
  }
  const o = optionsObject(options, where);
  const limit = (key: string, fallback: number) => {
    const v = o[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !(v > 0)) {
      throw new TypeError(`${where}: ${key} must be a positive number, got ${String(v)}`);
    }
    return v;
  };
  const maxBodySize = limit("maxBodySize", Infinity);
  const maxHeaderSize = limit("maxHeaderSize", 16 * 1024);
  const headersTimeout = limit("headersTimeout", 10_000);
  const keepAliveTimeout = limit("keepAliveTimeout", 5_000);
  if (o.onError !== undefined && typeof o.onError !== "function") {
    throw new TypeError(`${where}: onError must be a function`);
  }
  const onError = (o.onError as ServeOptions["onError"])
    ?? (() => new Response("Internal Server Error", { status: 500 }));
  const {
    onError: _e,
    signal,
    maxBodySize: _b,
    maxHeaderSize: _h,
    headersTimeout: _t,
    keepAliveTimeout: _k,
    ...listenOptions
  } = o as ServeOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`${where}: signal must be an AbortSignal`);
  }

  const endpoint: PipeServer = listen(name, listenOptions);
  /** Per connection: requests in hand, and the timer for the head (or the idle wait) due. */
  interface Conn {
    busy: number;
    /** Bytes of a request head have arrived since the last response (or the connection). */
    started: boolean;
    /** When the head (or the first byte) is due, or undefined while a request is in hand. */
    due: number | undefined;
    timer: ReturnType<typeof setTimeout> | undefined;
    /** When `timer` fires. */
    fires: number;
  }
  const newConn = (): Conn => ({
    busy: 0,
    started: false,
    due: undefined,
    timer: undefined,
    fires: 0,
  });
  const sockets = new Map<PipeSocket, Conn>();
  let stopping = false;
  /** shutdown()'s bound ran out: connections are closed, also one accepted after it. */
  let forced = false;
  let allClosed!: () => void;
  const drained = new Promise<void>((r) => (allClosed = r));
  const checkDone = () => {
    if (stopping && sockets.size === 0) allClosed();
  };

  const http = createServer({ maxHeaderSize }, (req, res) => {
    void respond(req, res).catch(() => {
      // What no response could report (onError itself failed, say): the request must not be
      // left waiting for an answer that never comes, nor its connection held.
      if (!res.writableFinished) res.destroy();
    });
  });
  // node:http never listens here (connections are handed to it), and Deno's closes a connection
  // after each response while its server is not listening (measured: Deno 2.9.5, one response
  // a connection, though its header said keep-alive). Listening is what this server does until
  // shutdown(), and says so.
  Object.defineProperty(http, "listening", { get: () => !stopping, configurable: true });
  http.headersTimeout = headersTimeout;
  http.keepAliveTimeout = keepAliveTimeout;
  // `Expect: 100-continue`: a body declared past maxBodySize is refused before the client sends
  // it (respond() answers 413 without reading), where node:http would invite it with a 100.
  http.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (!declaredTooLarge(req)) res.writeContinue();
    http.emit("request", req, res);
  });
  http.on("clientError", (error: Error & { code?: string }, socket: PipeSocket) => {
    // A malformed or oversized request: answered (when the socket can still take it), closed,
    // and the server goes on.
    const status = error.code === "HPE_HEADER_OVERFLOW"
      ? 431
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? 408
      : 400;
    if (socket.writable) endWith(socket, rawResponse(status));
    else socket.destroy();
  });

  /**
   * Between requests: the connection may wait `keepAliveTimeout` for a request's first byte, and
   * then `headersTimeout` for the rest of its head. Our own timers, the same in every runtime
   * (a connection handed to node:http with emit("connection") is not in its own checks).
   */
  function awaitHead(socket: PipeSocket, state: Conn): void {
    if (state.busy > 0 || socket.destroyed) return;
    const due = performance.now() + (state.started ? headersTimeout : keepAliveTimeout);
    state.due = due;
    // One timer per connection: it is set again only when none would fire by the new due time.
    if (state.timer !== undefined && state.fires <= due) return;
    clearTimeout(state.timer);
    const wake = () => {
      state.timer = undefined;
      if (state.due === undefined || state.busy > 0 || socket.destroyed) return;
      const left = state.due - performance.now();
      if (left > 0) {
        state.fires = performance.now() + left;
        state.timer = setTimeout(wake, left);
        return;
      }
      if (state.started && socket.writable) endWith(socket, rawResponse(408));
      else socket.destroy();
    };
    state.fires = due;
    state.timer = setTimeout(wake, due - performance.now());
  }

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as unknown as PipeSocket;
    const state = sockets.get(socket) ?? newConn();
    state.busy++;
    state.due = undefined; // no head is awaited while a request is in hand
    let answeredClose = false; // the handler's answer said `Connection: close`
    try {
      if (stopping) res.setHeader("Connection", "close");
      if (declaredTooLarge(req)) {
        res.writeHead(413, { "Content-Length": "0", Connection: "close" }).end();
        return;
      }
      const conn = socket.connection;
      const info: ServeInfo = {
        path: endpoint.path,
        peerProcessId: conn?.peerProcessId,
        peerUser: conn?.peerUser,
      };
      const aborted = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) aborted.abort(new Error("the client left"));
      });
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      }
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const body = hasBody ? bodyOf(req, maxBodySize, res, socket) : undefined;
      const request = new Request(`http://localhost${req.url}`, {
        method: req.method,
        headers,
        body: body?.stream ?? null,
        signal: aborted.signal,
        // @ts-ignore: a streamed request body needs it (fetch's RequestInit in Deno and Bun)
        duplex: "half",
      });
      // A body the handler never touched is dropped once the response is out, as Node's own
      // server dumps it: Deno's node:http left the connection stalled behind it.
      res.once("finish", () => {
        if (body && !req.complete && !request.bodyUsed && !request.body?.locked) body.discard();
      });
      let response: Response;
      try {
        response = await handler(request, info);
        if (!(response instanceof Response)) {
          throw new TypeError(`the handler returned ${typeof response}, not a Response`);
        }
        if (response.bodyUsed || response.body?.locked) {
          throw new TypeError("the handler returned a Response whose body was already read");
        }
      } catch (e) {
        response = await onError(e);
      }
      if (!(response instanceof Response) || response.bodyUsed || response.body?.locked) {
        throw new TypeError("onError must return a Response with an unread body");
      }
      if (res.headersSent) return; // 413 mid-body
      const out: Record<string, string | string[]> = {};
      response.headers.forEach((v, k) => {
        if (k !== "set-cookie") out[k] = v;
      });
      const cookies = response.headers.getSetCookie();
      if (cookies.length) out["set-cookie"] = cookies;
      if (stopping) out.connection = "close";
      answeredClose = /\bclose\b/i.test(String(out.connection ?? ""));
      res.writeHead(response.status, response.statusText || undefined, out);
      if (!response.body || req.method === "HEAD") {
        res.end();
        await response.body?.cancel();
        return;
      }
      const reader = response.body.getReader();
      // A client that leaves while the body has nothing to give (an event stream between
      // events) ends the read it waits in: else that read, and the body, would be held for ever.
      const left = () => void reader.cancel(aborted.signal.reason).catch(() => {});
      aborted.signal.addEventListener("abort", left, { once: true });
      // The handler's own Content-Length (a proxied answer's, say) is held to: bytes past it
      // would start the next response on a kept connection, and bytes short of it keep the
      // client waiting. node:http writes what it is given either way.
      const length = out["content-length"] === undefined
        ? undefined
        : Number(out["content-length"]);
      const promised = Number.isSafeInteger(length) ? length! : Infinity;
      let sent = 0;
      try {
        for (;;) {
          const r = await reader.read();
          if (aborted.signal.aborted) throw aborted.signal.reason;
          if (r.done) break;
          if (res.destroyed) throw new Error("the client left");
          sent += r.value.byteLength;
          if (sent > promised) {
            throw new TypeError(
              `the response body is longer than its Content-Length (${promised} bytes)`,
            );
          }
          if (!res.write(r.value)) await drainOrClose(res);
        }
        if (sent < promised && promised !== Infinity) {
          throw new TypeError(
            `the response body ended after ${sent} of the ${promised} bytes its Content-Length `
              + "declares",
          );
        }
        res.end();
      } catch (e) {
        await reader.cancel(e).catch(() => {});
        res.destroy();
        void Promise.resolve(onError(e)).catch(() => {});
      } finally {
        aborted.signal.removeEventListener("abort", left);
      }
    } finally {
      state.busy--;
      state.started = false;
      if (state.busy === 0) {
        if (res.writableFinished || res.destroyed) awaitHead(socket, state);
        else res.once("close", () => awaitHead(socket, state));
      }
      // Shutting down, or an answer that said `Connection: close` (the client asked for it, or
      // spoke HTTP/1.0 without keep-alive, whose body without a length ends only with the
      // connection): the connection closes once its last response is out (close() flushes).
      const asked = String(req.headers.connection ?? "");
      const closing = stopping || answeredClose
        || /\bclose\b/i.test(asked)
        || (req.httpVersion === "1.0" && !/\bkeep-alive\b/i.test(asked))
        || (res as { shouldKeepAlive?: boolean }).shouldKeepAlive === false;
      if (closing && state.busy === 0) {
        if (res.writableFinished || res.destroyed) socket.destroy();
        else res.once("close", () => socket.destroy());
      }
    }
  }

  /** The request's head declares a body past maxBodySize (answered 413 without reading it). */
  function declaredTooLarge(req: IncomingMessage): boolean {
    return Number(req.headers["content-length"] ?? 0) > maxBodySize;
  }

  /**
   * The request's body as a stream, cut at `max` bytes with a 413. It reads only as fast as the
   * handler does: while its queue is full the request and the connection are paused (Bun's
   * node:http reads the connection on regardless of a paused request, and held a whole upload
   * in memory). `discard()` drops the rest instead (a body the handler never read, once the
   * response is out), so that the connection serves its next request.
   */
  function bodyOf(
    req: IncomingMessage,
    max: number,
    res: ServerResponse,
    socket: PipeSocket,
  ): { stream: ReadableStream<Uint8Array>; discard(): void } {
    let n = 0;
    let discarding = false;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const pause = () => {
      req.pause();
      socket.pause();
    };
    const resume = () => {
      req.resume();
      socket.resume();
    };
    /** The body ends for its reader: a call on a stream that has ended already is a no-op. */
    const end = (how: () => void) => {
      try {
        how();
      } catch {
        // closed, errored or cancelled already
      }
    };
    const discard = () => {
      if (discarding) return;
      discarding = true;
      // A reader that comes later is told, rather than left waiting for bytes now dropped.
      end(() => controller.error(new Error("the request body was dropped: it was not read")));
      resume();
    };
    req.on("data", (chunk: Uint8Array) => {
      n += chunk.byteLength;
      if (n > max && !req.destroyed) {
        const error = new Error(`the request body passed maxBodySize (${max} bytes)`);
        if (!res.headersSent) {
          res.writeHead(413, { "Content-Length": "0", Connection: "close" }).end();
        } else {
          // A handler that answered before reading (an echo) has begun its response, which
          // cannot become a 413 now: the connection ends instead, and the limit holds all the same.
          res.destroy(error);
        }
        req.destroy(error);
        return;
      }
      if (discarding) return;
      end(() =>
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      );
      if ((controller.desiredSize ?? 0) <= 0) pause();
    });
    req.on("end", () => end(() => controller.close()));
    req.on("error", (e) => end(() => controller.error(e)));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      pull: resume,
      cancel: discard,
    }, new ByteLengthQueuingStrategy({ highWaterMark: BODY_QUEUE }));
    return { stream, discard };
  }

  const accepting = (async () => {
    for await (const conn of endpoint) {
      const state = newConn();
      const socket = connectionDuplex(conn, {
        onBytes() {
          if (state.started || state.busy > 0) return;
          state.started = true;
          awaitHead(socket, state);
        },
      });
      sockets.set(socket, state);
      if (forced) socket.destroy(); // accepted as the bound ran out
      awaitHead(socket, state);
      socket.on("close", () => {
        clearTimeout(state.timer);
        sockets.delete(socket);
        checkDone();
      });
      socket.on("error", () => {}); // reported through the request, or nobody is listening
      http.emit("connection", socket);
    }
  })();

  let shuttingDown: Promise<void> | undefined;
  /** When the connections still open are closed (a `timeout` given to shutdown()). */
  let forceAt = Infinity;
  let forceTimer: Timer | undefined;
  const force = () => {
    forced = true;
    for (const socket of sockets.keys()) {
      // Abortive: destroy() alone closes the connection gracefully, flushing what is queued, and
      // a client that stopped reading held that flush for the writer's closeTimeout (30 s).
      void socket.connection?.writer?.stop().catch(() => {});
      socket.destroy();
    }
  };
  void drained.then(() => forceTimer?.clear());
  const shutdown = (options: ShutdownOptions = {}): Promise<void> => {
    let timeout: number;
    try {
      const o = optionsObject(options, "shutdown()");
      timeout = o.timeout === undefined
        ? Infinity
        : timeoutValue(o.timeout, "timeout", "shutdown()");
    } catch (e) {
      return Promise.reject(e);
    }
    const at = performance.now() + timeout;
    if (at < forceAt) {
      forceAt = at;
      forceTimer?.clear();
      forceTimer = longTimeout(force, timeout);
    }
    shuttingDown ??= (async () => {
      stopping = true;
      await endpoint.close().catch(() => {});
      await accepting.catch(() => {});
      // Idle kept-alive connections close now; busy ones after their response.
      for (const [socket, state] of sockets) if (state.busy === 0) socket.destroy();
      checkDone();
      await drained;
      http.close();
    })();
    return shuttingDown;
  };
  signal?.addEventListener("abort", () => void shutdown(), { once: true });
  if (signal?.aborted) void shutdown();
  const finished = accepting.then(() => drained);

  return {
    path: endpoint.path,
    finished,
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(),
  };
}
