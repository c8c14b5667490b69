/**
 * The Switchboard client for browsers and Node: every method of the
 * contract, typed, over one WebSocket that reconnects by itself, and
 * subscriptions that yield each publication once, in order, across
 * reconnects and server restarts.
 *
 * @module
 */
import { SwitchboardMethods, type CallOptions, type MethodMap } from "./contract.js";
import { ClosedError, ConnectionError, SwitchboardError, TimeoutError } from "./errors.js";
import { Emitter, type Off } from "./events.js";
import { Subscription, Topic, type SubscribeOptions } from "./subscription.js";

export * from "./contract.js";
export * from "./errors.js";
export type { Off } from "./events.js";
export { Emitter } from "./events.js";
export type { Position } from "./position.js";
export { Subscription, type PublicationOf, type SubscribeOptions, type SubscriptionEvents, type Subscribed } from "./subscription.js";

/** What the client needs of a WebSocket: the browser's, or the `ws` package's in Node 20. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `ws`'s default export. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * A token, or a function the client calls for one before every connection
 * attempt, and when the server says the connection's token is expiring
 * (sessionExpiring): the fresh token is sent with sessionRefresh, and the
 * connection and its subscriptions go on.
 */
export type Token = string | (() => string | Promise<string>);

/** When to try connecting again. The delay before attempt n is random in [0, min(maxDelayMs, minDelayMs * 2^(n-1))]. */
export interface ReconnectOptions {
  /** The first attempt's bound, 250 ms by default. */
  minDelayMs?: number;
  /** The bound's ceiling, 10 s by default. */
  maxDelayMs?: number;
  /** Failed attempts in a row after which the client gives up (see the `failed` event); unlimited by default. */
  maxAttempts?: number;
}

export interface SwitchboardOptions {
  /**
   * The server: `ws://`, `wss://`, `http://` or `https://`, with or without
   * `/rpc` (another path is taken as a proxy's prefix), or `host:port`. In
   * a browser it may be left out, or be a path, to mean the page's own
   * server.
   */
  url?: string;
  /** Sent as the `access_token` query parameter of each connection. */
  token?: Token;
  /** The WebSocket constructor, where there is no global one (Node 20: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** How long a call, or a connection attempt, may take: 30 s by default. */
  timeoutMs?: number;
  reconnect?: ReconnectOptions;
  /** How many publications a subscription holds for a reader that is behind: 1024 by default. */
  bufferSize?: number;
}

/** The state of the client's connection. */
export type ConnectionState = "idle" | "connecting" | "connected" | "waiting" | "closed";

export interface ClientEvents {
  /** An attempt to connect began; `attempt` counts from 1 since the last connection. */
  connecting: { attempt: number };
  connected: { url: string };
  /**
   * The connection ended, or an attempt failed. `code` is the WebSocket close code (1006 when there was no close frame).
   * After 4003 (an admin disconnected the user; `reason` says why) the client is closed: it does not reconnect.
   */
  disconnected: { code: number; reason: string };
  /** The client gave up after `reconnect.maxAttempts`: calls waiting are rejected and subscriptions ended. A call or reconnectNow() starts again. */
  failed: { attempts: number };
}

interface Pending {
  id?: number;
  method: string;
  params: unknown;
  resolve(result: unknown): void;
  reject(err: unknown): void;
  settle(): void; // clears the timer and the abort listener
}

// A reply handler of the client's own calls; err is set when no result came.
type ReplyHandler = (err: unknown, result?: unknown) => void;

const OPEN = 1;
const tokenExpired = 4001;
const disconnectedByAdmin = 4003;

/**
 * A Switchboard client. It connects on the first call or subscription and
 * stays connected, reconnecting with backoff, until {@link close}.
 */
export class Switchboard extends SwitchboardMethods {
  /** The WebSocket URL, without the token. */
  readonly url: string;
  #events = new Emitter<ClientEvents>();
  #state: ConnectionState = "idle";
  #opts: Required<Omit<SwitchboardOptions, "url" | "token" | "reconnect">> & { reconnect: Required<ReconnectOptions> };
  #token: Token | undefined;
  #ws: WebSocketLike | null = null;
  #attempt = 0;
  #dials = 0; // counts connection attempts, so that a late token finds its attempt over
  #timer: ReturnType<typeof setTimeout> | undefined; // the backoff's, or the connection attempt's bound
  #nextId = 1;
  #sent = new Map<number, Pending | ReplyHandler>();
  #queued: Pending[] = [];
  /** @internal */
  readonly topics = new Map<string, Topic>();
  #wake = () => {
    if (this.#state === "waiting" && (globalThis.document?.visibilityState ?? "visible") === "visible") this.reconnectNow();
  };

  constructor(options: SwitchboardOptions = {}) {
    super();
    this.url = socketURL(options.url);
    const WS = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
    if (!WS) throw new TypeError("there is no global WebSocket here: pass one, e.g. new Switchboard({ WebSocket }) with ws's");
    const r = options.reconnect ?? {};
    this.#opts = {
      WebSocket: WS,
      timeoutMs: options.timeoutMs ?? 30_000,
      bufferSize: options.bufferSize ?? 1024,
      reconnect: { minDelayMs: r.minDelayMs ?? 250, maxDelayMs: r.maxDelayMs ?? 10_000, maxAttempts: r.maxAttempts ?? Infinity },
    };
    this.#token = options.token;
  }

  /** Calls fn with each connection event of the type, until the returned function is called. */
  on<K extends keyof ClientEvents>(type: K, fn: (event: ClientEvents[K]) => void): Off {
    return this.#events.on(type, fn);
  }

  /** Removes fn from the listeners of the type. */
  off<K extends keyof ClientEvents>(type: K, fn: (event: ClientEvents[K]) => void): void {
    this.#events.off(type, fn);
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** @internal */
  get bufferSize(): number {
    return this.#opts.bufferSize;
  }

  /** Subscribes to channel; see {@link Subscription}. */
  subscribe<T = unknown>(channel: string, options: SubscribeOptions = {}): Subscription<T> {
    if (this.#state === "closed") throw new ClosedError();
    let topic = this.topics.get(channel);
    if (!topic) this.topics.set(channel, (topic = new Topic(this, channel)));
    const sub = new Subscription<T>(topic, options);
    topic.add(sub);
    this.#connect();
    return sub;
  }

  call<M extends keyof MethodMap>(method: M, params: MethodMap[M]["params"], options?: CallOptions): Promise<MethodMap[M]["result"]>;
  call(method: string, params?: object | unknown[], options?: CallOptions): Promise<unknown>;
  call(method: string, params?: object | unknown[], options: CallOptions = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#state === "closed") return reject(new ClosedError());
      const { signal } = options;
      if (signal?.aborted) return reject(signal.reason);
      const ms = options.timeoutMs ?? this.#opts.timeoutMs;
      const timer = setTimeout(() => fail(new TimeoutError(`${method}: no reply in ${ms} ms`)), ms);
      const onAbort = () => fail(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const p: Pending = {
        method, params, resolve, reject,
        settle: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      const fail = (err: unknown) => {
        if (p.id !== undefined) this.#sent.delete(p.id);
        else this.#queued = this.#queued.filter((q) => q !== p);
        p.settle();
        reject(err);
      };
      if (this.#ws?.readyState === OPEN && this.#state === "connected") this.#send(p);
      else {
        this.#queued.push(p);
        this.#connect();
      }
    });
  }

  /**
   * Sends a call of the client's own on the open socket; handle runs as
   * the reply is read, before anything after it. @internal
   */
  request(method: string, params: unknown, handle: ReplyHandler): void {
    if (this.#state !== "connected" || !this.#ws) return handle(new ConnectionError("not connected"));
    const id = this.#nextId++;
    this.#sent.set(id, handle);
    this.#ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  }

  /** Tries to connect now, without waiting for the backoff delay. */
  reconnectNow(): void {
    if (this.#state === "closed" || this.#state === "connecting" || this.#state === "connected") return;
    clearTimeout(this.#timer);
    this.#state = "idle";
    this.#connect();
  }

  /**
   * Closes the connection and ends everything: calls waiting reject with a
   * ClosedError, subscriptions end, and no timer or socket is left.
   */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#listenForWake(false);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close(1000, "");
    }
    this.#failAll(new ClosedError());
    for (const topic of [...this.topics.values()]) topic.end();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #send(p: Pending): void {
    p.id = this.#nextId++;
    this.#sent.set(p.id, p);
    this.#ws!.send(JSON.stringify({ jsonrpc: "2.0", id: p.id, method: p.method, params: p.params }));
  }

  #connect(): void {
    if (this.#state !== "idle") return;
    this.#state = "connecting";
    this.#listenForWake(true);
    this.#attempt++;
    this.#events.emit("connecting", { attempt: this.#attempt });
    void this.#open();
  }

  async #open(): Promise<void> {
    // The bound covers the token function too: one that never settles
    // fails the attempt like a server that never answers.
    const dial = ++this.#dials;
    const current = () => dial === this.#dials && this.#state === "connecting";
    this.#timer = setTimeout(() => this.#lost(this.#ws, 1006, "connecting took too long"), this.#opts.timeoutMs);
    let url = this.url;
    try {
      const token = typeof this.#token === "function" ? await this.#token() : this.#token;
      if (token) url += (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token);
    } catch (err) {
      if (current()) this.#lost(null, 1006, `the token function failed: ${String(err)}`);
      return;
    }
    if (!current()) return; // closed, or given up on, meanwhile
    const ws = new this.#opts.WebSocket(url);
    this.#ws = ws;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      clearTimeout(this.#timer);
      this.#state = "connected";
      this.#attempt = 0;
      this.#events.emit("connected", { url: this.url });
      const queued = this.#queued;
      this.#queued = [];
      for (const p of queued) this.#send(p);
      for (const topic of this.topics.values()) topic.start();
    };
    ws.onmessage = (e: { data: unknown }) => this.#receive(e.data);
    ws.onclose = (e: { code: number; reason: string }) => this.#lost(ws, e.code, e.reason);
    ws.onerror = () => {}; // a close event follows
  }

  #lost(ws: WebSocketLike | null, code: number, reason: string): void {
    if (ws !== this.#ws || this.#state === "closed") return;
    clearTimeout(this.#timer);
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      if (ws.readyState < 2) ws.close();
    }
    this.#ws = null;
    const err = new ConnectionError(`the connection was lost (${code}${reason ? " " + reason : ""})`, code, reason);
    this.#failSent(err); // calls not yet sent wait for the next socket
    for (const topic of this.topics.values()) topic.detach();
    if (code === disconnectedByAdmin) {
      // Cut off by an admin: reconnecting on its own would undo that.
      this.#end("closed", err);
      return this.#events.emit("disconnected", { code, reason });
    }
    this.#state = "waiting";
    this.#events.emit("disconnected", { code, reason });
    if (this.#state !== "waiting") return; // a listener closed or reconnected
    const { minDelayMs, maxDelayMs, maxAttempts } = this.#opts.reconnect;
    if (this.#attempt >= maxAttempts) {
      const attempts = this.#attempt;
      this.#attempt = 0;
      this.#end("idle", err);
      this.#events.emit("failed", { attempts });
      return;
    }
    // A token that expired is replaced at once; the token function gives
    // the next one.
    const bound = Math.min(maxDelayMs, minDelayMs * 2 ** Math.max(0, this.#attempt - 1));
    const delay = code === tokenExpired && this.#attempt <= 1 ? 0 : Math.random() * bound;
    this.#timer = setTimeout(() => this.reconnectNow(), delay);
  }

  // #end leaves the client in state, with every call and subscription ended with err.
  #end(state: ConnectionState, err: Error): void {
    this.#state = state;
    this.#listenForWake(false);
    this.#failAll(err);
    for (const topic of [...this.topics.values()]) topic.end(err);
  }

  #failAll(err: Error): void {
    const queued = this.#queued;
    this.#queued = [];
    for (const p of queued) answer(p, err);
    this.#failSent(err);
  }

  // #failSent fails the calls that were waiting for a reply.
  #failSent(err: Error): void {
    const sent = [...this.#sent.values()];
    this.#sent.clear();
    for (const p of sent) answer(p, err);
  }

  #receive(data: unknown): void {
    let msg: { id?: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown }; method?: string; params?: { channel?: string } };
    try {
      msg = JSON.parse(String(data));
    } catch {
      return; // the server sends only JSON; nothing to answer
    }
    if (msg.method !== undefined) {
      if (msg.method === "sessionExpiring") void this.#refresh();
      const channel = msg.params?.channel;
      if (typeof channel === "string") this.topics.get(channel)?.notify(msg.method, msg.params);
      return;
    }
    if (typeof msg.id !== "number") return;
    const p = this.#sent.get(msg.id);
    if (!p) return;
    this.#sent.delete(msg.id);
    answer(p, msg.error && new SwitchboardError(msg.error.code, msg.error.message, msg.error.data), msg.result);
  }

  // #refresh sends the token function's next token on the open socket. If
  // either fails, the server closes with 4001 at the expiry and the
  // reconnect asks the function again.
  async #refresh(): Promise<void> {
    const ws = this.#ws;
    if (typeof this.#token !== "function") return;
    try {
      const token = await this.#token();
      if (ws === this.#ws) this.request("sessionRefresh", { token }, () => {});
    } catch {
      // as above
    }
  }

  #listenForWake(on: boolean): void {
    const method = on ? "addEventListener" : "removeEventListener";
    globalThis.window?.[method]("online", this.#wake);
    globalThis.document?.[method]("visibilitychange", this.#wake);
  }
}

// answer settles a call: with err when it failed, else with result.
function answer(p: Pending | ReplyHandler, err: Error | undefined, result?: unknown): void {
  if (typeof p === "function") return p(err, result);
  p.settle();
  if (err) p.reject(err);
  else p.resolve(result);
}

/**
 * socketURL turns the forms the CLI takes into the WebSocket URL of the
 * server's /rpc route.
 */
export function socketURL(raw?: string): string {
  const page = globalThis.location?.href;
  if (!raw || raw.startsWith("/")) {
    if (!page) throw new TypeError("url is required outside a browser");
    raw = new URL(raw || "/", page).href;
  } else if (!raw.includes("://")) {
    raw = "http://" + raw;
  }
  const u = new URL(raw);
  const scheme = ({ "http:": "ws:", "ws:": "ws:", "https:": "wss:", "wss:": "wss:" } as Record<string, string>)[u.protocol];
  if (!scheme) throw new TypeError(`server URL ${raw}: the scheme must be ws, wss, http or https`);
  if (u.username || u.password || u.hash) throw new TypeError(`server URL ${raw}: user info and fragments are not allowed`);
  u.protocol = scheme;
  const path = u.pathname.replace(/\/+$/, "");
  u.pathname = path.endsWith("/rpc") ? path : path + "/rpc";
  return u.href;
}
