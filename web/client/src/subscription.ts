import { ErrorCode, type ChannelJoin, type ChannelLeave, type ChannelUnsubscribed, type Publication, type SubscribeResult } from "./contract.js";
import { ClosedError, LostError, SwitchboardError } from "./errors.js";
import { Emitter } from "./events.js";
import type { Position } from "./position.js";
import type { Switchboard } from "./switchboard.js";

export interface SubscribeOptions {
  /** Where the reader left off: the subscription begins after it, recovering what was published since. */
  since?: Position;
  /** Also receive `join` and `leave` events. */
  joinLeave?: boolean;
  /** How many publications to hold for a reader that is behind; the client's `bufferSize` by default. */
  bufferSize?: number;
}

/** What a subscribe, the first or one after a reconnect, brought. */
export interface Subscribed {
  /** How many publications the server recovered from the history for this subscription. */
  recovered: number;
  /** What the history no longer held, if anything; also yielded in order as a loss (see {@link Subscription}). */
  lost?: LostError;
  /** The position of the last publication now queued for the reader. */
  position: Position;
}

export interface SubscriptionEvents {
  subscribed: Subscribed;
  /** Publications lost, in stream order; with a listener, the iterator no longer throws them. */
  lost: LostError;
  join: ChannelJoin;
  leave: ChannelLeave;
  /** The server ended the subscription (`reason` says why); the client subscribes again by itself. */
  unsubscribed: ChannelUnsubscribed;
}

/** A publication whose data is of type T. */
export type PublicationOf<T> = Omit<Publication, "data"> & { data: T };

type Item = { pub: Publication; epoch: string } | { lost: LostError };
type Waiter = { resolve(r: IteratorResult<PublicationOf<unknown>>): void; reject(err: unknown): void };

// Symbol.dispose and Symbol.asyncDispose where the runtime has them; where
// it does not, the methods are there under names no one uses.
const dispose: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for("Symbol.dispose");
const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");

/**
 * A subscription to one channel: an async iterable of its publications,
 * each yielded once, in offset order, across reconnects and restarts of
 * the server.
 *
 * It keeps the position of the last publication queued for its reader and
 * takes a publication only when its offset is the next one. A gap, a
 * reconnect, or a reader whose buffer of `bufferSize` publications is
 * full makes the client subscribe again from that position, which
 * recovers the rest from the channel's history once the reader has caught
 * up. What the history no longer holds is a {@link LostError}: given to
 * `lost` listeners in stream order, or else thrown by the iterator, after
 * which iterating again goes on past it.
 *
 * Breaking out of a `for await` loop, {@link unsubscribe} and disposal end
 * it; several subscriptions to one channel share one on the server.
 */
export class Subscription<T = unknown> extends Emitter<SubscriptionEvents> implements AsyncIterableIterator<PublicationOf<T>> {
  readonly channel: string;
  /** Settles with the first subscribe: rejects with the server's error if it refused. */
  readonly ready: Promise<void>;
  /** @internal */
  readonly joinLeave: boolean;
  /** The position of the last publication queued for the reader. @internal */
  q: Position | null;
  #topic: Topic;
  #cap: number;
  #position: Position | null;
  #buf: Item[] = [];
  #broken = false;
  #ended: { error?: unknown } | null = null;
  #waiters: Waiter[] = [];
  #answer!: (err?: unknown) => void;

  /** @internal */
  constructor(topic: Topic, options: SubscribeOptions) {
    super();
    this.#topic = topic;
    this.channel = topic.channel;
    this.joinLeave = options.joinLeave ?? false;
    this.#cap = options.bufferSize ?? topic.client.bufferSize;
    this.q = options.since ? { ...options.since } : null;
    this.#position = this.q;
    this.ready = new Promise((resolve, reject) => {
      this.#answer = (err) => {
        this.#answer = () => {};
        if (err) reject(err);
        else resolve();
      };
    });
    this.ready.catch(() => {}); // the iterator reports it too
  }

  /**
   * The position of the last publication yielded (or where a loss said the
   * subscription goes on from), or the `since` it was made with: keep it
   * and subscribe since it later, even from another page load, to miss
   * nothing. Null until the first publication, without `since`.
   */
  get position(): Position | null {
    return this.#position && { ...this.#position };
  }

  next(): Promise<IteratorResult<PublicationOf<T>>> {
    for (;;) {
      const item = this.#buf.shift();
      if (!item) break;
      if (this.#broken && this.#buf.length === 0) {
        this.#broken = false;
        this.#topic.resync();
      }
      if ("lost" in item) {
        this.#position = item.lost.resumed;
        if (this.listens("lost")) {
          this.emit("lost", item.lost);
          continue;
        }
        return Promise.reject(item.lost);
      }
      this.#position = { offset: item.pub.offset, epoch: item.epoch };
      return Promise.resolve({ done: false, value: item.pub as PublicationOf<T> });
    }
    if (this.#ended) {
      return this.#ended.error ? Promise.reject(this.#ended.error) : Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve: resolve as Waiter["resolve"], reject }));
  }

  /** Ends the subscription: what `for await` calls when its loop is left early. */
  return(): Promise<IteratorResult<PublicationOf<T>>> {
    this.unsubscribe();
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the subscription; the server's ends with the last one of the channel. */
  unsubscribe(): void {
    if (this.#ended) return;
    this.#buf = [];
    this.end();
    this.#topic.remove(this);
  }

  [dispose](): void {
    this.unsubscribe();
  }

  [asyncDispose](): Promise<void> {
    this.unsubscribe();
    return Promise.resolve();
  }

  /** Ends the iteration: with err after what is queued, or at once without. @internal */
  end(err?: unknown): void {
    if (this.#ended) return;
    this.#ended = { error: err };
    if (!err) this.#buf = [];
    this.#answer(err ?? new ClosedError());
    for (const w of this.#waiters.splice(0)) this.next().then(w.resolve, w.reject);
  }

  /** Takes a publication of epoch if it is the next; "gap" when one is missing. @internal */
  offer(p: Publication, epoch: string): "took" | "skip" | "gap" {
    const q = this.q;
    if (this.#broken || this.#ended || !q) return "skip";
    if (q.epoch !== epoch || p.offset > q.offset + 1) return "gap";
    if (p.offset <= q.offset || !this.#push({ pub: p, epoch })) return "skip";
    this.q = { offset: p.offset, epoch };
    return "took";
  }

  /**
   * Applies the reply to a channelSubscribe made since the given position,
   * and reports whether this subscription is still behind it. @internal
   */
  apply(res: SubscribeResult, since: Position | undefined): boolean {
    if (this.#broken || this.#ended) return false;
    const epoch = res.epoch;
    let lost: LostError | undefined;
    let recovered = 0;
    if (!this.q) {
      this.q = { offset: res.offset, epoch };
      this.#position ??= this.q;
    } else {
      if (this.q.epoch !== epoch && !this.#lose((lost = new LostError(this.channel, this.q, { offset: 0, epoch })))) return false;
      // A recovery in this epoch that begins later than the next
      // publication: the history no longer holds those before it.
      if (since?.epoch === epoch && !res.recovered && this.q.offset < res.offset) {
        const first = res.publications.length ? res.publications[0]!.offset : res.offset + 1;
        if (first > this.q.offset + 1 && !this.#lose((lost = new LostError(this.channel, this.q, { offset: first - 1, epoch })))) return false;
      }
      for (const p of res.publications) {
        const r = this.offer(p, epoch);
        if (r === "gap") break;
        if (r === "took") recovered++;
      }
    }
    this.#answer();
    this.emit("subscribed", { recovered, ...(lost && { lost }), position: { ...this.q } });
    return !this.#broken && this.q.offset < res.offset;
  }

  /** Moves a subscription still in an older epoch to the start of epoch, as a loss. @internal */
  rebase(epoch: string): void {
    if (this.q && this.q.epoch !== epoch && !this.#broken && !this.#ended) this.#lose(new LostError(this.channel, this.q, { offset: 0, epoch }));
  }

  /** Queues a loss and goes on after it; false when the buffer is full. */
  #lose(lost: LostError): boolean {
    if (!this.#push({ lost })) return false;
    this.q = { ...lost.resumed };
    return true;
  }

  #push(item: Item): boolean {
    if (this.#buf.length >= this.#cap && this.#waiters.length === 0) {
      this.#broken = true; // take nothing until the reader has caught up
      return false;
    }
    this.#buf.push(item);
    const w = this.#waiters.shift();
    if (w) this.next().then(w.resolve, w.reject);
    return true;
  }
}

/**
 * A channel's subscription on the server, shared by the client's
 * Subscriptions to it. It subscribes since the furthest behind of them,
 * and again whenever one is behind what the server has sent. The server
 * runs a connection's calls concurrently, so an unsubscribe is answered
 * before the next subscribe is sent. @internal
 */
export class Topic {
  readonly subs = new Set<Subscription<unknown>>();
  #status: "idle" | "subscribing" | "live" | "unsubscribing" | "ended" = "idle";
  #head: Position | undefined; // the newest position the server has told of
  #joinLeave = false; // whether the server's subscription sends joins and leaves
  #redo = false; // subscribe again once the call under way is answered
  #retry: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly client: Switchboard, readonly channel: string) {}

  add(sub: Subscription<unknown>): void {
    this.subs.add(sub);
    const head = this.#head;
    if (this.#status !== "live" || !head) return this.start();
    if (sub.joinLeave && !this.#joinLeave) return this.resync();
    if (!sub.q) sub.q = head;
    if (sub.q.epoch !== head.epoch || sub.q.offset < head.offset) return this.resync();
    sub.apply({ channel: this.channel, offset: head.offset, epoch: head.epoch, recovered: true, publications: [] }, head);
  }

  remove(sub: Subscription<unknown>): void {
    this.subs.delete(sub);
    if (this.subs.size > 0) return;
    if (this.#status === "live") this.#unsubscribe();
    else if (this.#status === "idle") this.end();
    // subscribing: the answer finds no one and unsubscribes
  }

  /** Ends every subscription, with err if given. */
  end(err?: unknown): void {
    this.#status = "ended";
    clearTimeout(this.#retry);
    if (this.client.topics.get(this.channel) === this) this.client.topics.delete(this.channel);
    for (const sub of [...this.subs]) sub.end(err);
    this.subs.clear();
  }

  /** Subscribes, if due, once connected. */
  start(): void {
    if (this.#status !== "idle") return;
    if (this.subs.size === 0) this.end();
    else if (this.client.state === "connected") this.#subscribe();
  }

  /** The socket was lost: subscribe again on the next. */
  detach(): void {
    if (this.#status !== "ended") this.#status = "idle";
  }

  /** Subscribes again, since the furthest behind. */
  resync(): void {
    if (this.#status === "subscribing") this.#redo = true;
    if (this.#status === "live") this.#unsubscribe();
  }

  #unsubscribe(): void {
    this.#status = "unsubscribing";
    this.client.request("channelUnsubscribe", { channel: this.channel }, () => {
      if (this.#status !== "unsubscribing") return;
      this.#status = "idle";
      this.start();
    });
  }

  notify(method: string, params: unknown): void {
    if (this.#status === "idle" || this.#status === "ended") return;
    switch (method) {
      case "channelPublication": {
        const p = params as Publication;
        const head = this.#head;
        if (!head) return;
        if (p.offset > head.offset) this.#head = { offset: p.offset, epoch: head.epoch };
        let gap = false;
        for (const sub of this.subs) gap = sub.offer(p, head.epoch) === "gap" || gap;
        if (gap) this.resync();
        return;
      }
      case "channelJoin":
      case "channelLeave":
        for (const sub of this.subs) if (sub.joinLeave) sub.emit(method === "channelJoin" ? "join" : "leave", params as ChannelJoin);
        return;
      case "channelUnsubscribed":
        for (const sub of this.subs) sub.emit("unsubscribed", params as ChannelUnsubscribed);
        // Ended by the server: nothing to unsubscribe from.
        if (this.#status === "live") {
          this.#status = "idle";
          this.start();
        } else this.#redo = true;
    }
  }

  #subscribe(): void {
    const since = this.#since();
    const joinLeave = [...this.subs].some((s) => s.joinLeave);
    this.#status = "subscribing";
    this.#redo = false;
    const params = { channel: this.channel, ...(since && { since }), ...(joinLeave && { joinLeave }) };
    this.client.request("channelSubscribe", params, (err, res) => this.#answered(err, res as SubscribeResult, since, joinLeave));
  }

  // The position to subscribe since: the furthest behind, in the epoch
  // the server last told of (a subscription still in an older one has
  // lost the rest of that one).
  #since(): Position | undefined {
    let min: Position | undefined;
    const epoch = this.#head?.epoch;
    for (const sub of this.subs) {
      if (epoch !== undefined) sub.rebase(epoch);
      const q = sub.q;
      if (q && q.epoch === (epoch ?? q.epoch) && (!min || q.offset < min.offset)) min = q;
    }
    return min && { ...min };
  }

  #answered(err: unknown, res: SubscribeResult, since: Position | undefined, joinLeave: boolean): void {
    if (this.#status !== "subscribing") return;
    if (err) {
      if (!(err instanceof SwitchboardError)) return; // the socket was lost; detach follows
      this.#status = "idle";
      if (err.code === ErrorCode.Unavailable) {
        // Overloaded or shutting down: try again in a while.
        this.#retry = setTimeout(() => this.start(), 1000);
        return;
      }
      return this.end(err);
    }
    this.#status = "live";
    this.#head = { offset: res.offset, epoch: res.epoch };
    if (this.subs.size === 0) return this.#unsubscribe();
    this.#joinLeave = joinLeave;
    let behind = false;
    for (const sub of this.subs) behind = sub.apply(res, since) || behind;
    if (behind || this.#redo || (!joinLeave && [...this.subs].some((s) => s.joinLeave))) this.resync();
  }
}
