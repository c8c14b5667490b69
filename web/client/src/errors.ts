import type { Position } from "./position.js";

/** A JSON-RPC error the server answered with. Compare `code` with {@link ErrorCode}. */
export class SwitchboardError extends Error {
  override name = "SwitchboardError";
  constructor(
    /** The JSON-RPC error code: one of {@link ErrorCode}. */
    readonly code: number,
    message: string,
    /** What the server added, such as `retryAfterMs` for a rate limit. */
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/**
 * The connection could not be made, or was lost before a call's reply
 * came: the call may or may not have run. `code` and `reason` are the
 * WebSocket close's, when there was one.
 */
export class ConnectionError extends Error {
  override name = "ConnectionError";
  constructor(message: string, readonly code?: number, readonly reason?: string) {
    super(message);
  }
}

/** The call, or the connection attempt it waited for, took longer than its `timeoutMs`. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/** The client was closed: nothing more is sent or received. */
export class ClosedError extends Error {
  override name = "ClosedError";
  constructor() {
    super("the Switchboard client is closed");
  }
}

/**
 * Publications that the channel's history no longer held when the
 * subscription came back for them. The subscription goes on after them,
 * from `resumed`.
 */
export class LostError extends Error {
  override name = "LostError";
  constructor(
    readonly channel: string,
    /** The position the subscription had reached. */
    readonly after: Position,
    /** Where it goes on from: the publication after `resumed.offset` is the next one yielded. */
    readonly resumed: Position,
  ) {
    super(after.epoch === resumed.epoch
      ? `${channel}: publications ${after.offset + 1}..${resumed.offset} are no longer in the history`
      : `${channel}: the channel's history was replaced (epoch ${after.epoch} is gone); publications after ${after.offset} of it are lost`);
  }

  /** The first offset lost, of `after.epoch`. */
  get first(): number {
    return this.after.offset + 1;
  }

  /** The last offset lost, when the epoch is the same; undefined when the whole epoch after `after` was lost. */
  get last(): number | undefined {
    return this.after.epoch === this.resumed.epoch ? this.resumed.offset : undefined;
  }
}
