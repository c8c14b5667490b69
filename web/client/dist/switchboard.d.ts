export interface ChannelSummary {
	/** The channel. */
	channel: string;
	/** Its latest offset. */
	offset: number;
	/** Connections subscribed to it: on this server, or with --engine redis, on every node. */
	subscribers: number;
}
export interface DisconnectResult {
	/** How many connections were closed. */
	connections: number;
	user: string;
}
export interface HistoryResult {
	/** The channel. */
	channel: string;
	/** The channel's epoch. */
	epoch: string;
	/** The channel's latest offset when it was read. */
	offset: number;
	/** The page, in the order asked for: at most limit, and no more once they hold 4 MiB of data. */
	publications: Publication[];
}
export interface ListResult {
	/** The channels, in name order. */
	channels: ChannelSummary[];
	/** True when more channels matched than were returned. */
	more: boolean;
}
export interface Member {
	/** The subscribed connection. */
	connectionId: string;
	/** When it subscribed. */
	since: string;
	/** The subscriber's user; empty for anonymous callers. */
	user: string;
}
interface Permissions$1 {
	/** True when the caller may do everything. */
	admin: boolean;
	/** Channel patterns the caller may publish to. */
	publish: string[];
	/** Channel patterns the caller may subscribe to. */
	subscribe: string[];
}
export interface PingResult {
	/** The server's clock when it answered, in UTC. */
	time: string;
}
export interface PresenceResult {
	/** The channel. */
	channel: string;
	/** One per subscribed connection, oldest first. */
	members: Member[];
}
export interface Publication {
	/** The channel. */
	channel: string;
	/** The message, as published. */
	data: unknown;
	/** The publication's offset in the channel. */
	offset: number;
	/** The user who published it; empty for anonymous publishers. */
	publisher: string;
	/** When the server accepted it. */
	time: string;
}
export interface PublishResult {
	/** The channel published to. */
	channel: string;
	/** True when the idempotency key had been seen: nothing new was published and offset is the first publication's. */
	duplicate: boolean;
	/** The channel's epoch. */
	epoch: string;
	/** The publication's offset. */
	offset: number;
}
export interface RemoveResult {
	/** The channel. */
	channel: string;
	/** The channel's new epoch. */
	epoch: string;
	/** 0: the channel starts again. */
	offset: number;
}
export interface RevokeResult {
	/** How many connections were closed. */
	connections: number;
	until: string;
	user: string;
}
export interface ServerInfoResult {
	/** JSON-RPC calls finished since the server started. */
	callsTotal: number;
	/** WebSocket connections open now. */
	connections: number;
	/** The most calls one batch may hold (--max-batch). A batch's channelPublish and channelRemove calls take effect in its order and stop at the first that fails or is refused; servers from before that do not send this member. */
	maxBatch: number;
	/** This node's id, kept across restarts in the data directory. */
	nodeId: string;
	/** Notifications queued for connections since the server started. */
	notificationsTotal: number;
	/** When the server started. */
	startedAt: string;
	/** Seconds since the server started. */
	uptimeSeconds: number;
	/** The server build's version. */
	version: string;
}
/** Start after this position (with newestFirst, before it). Its epoch must be the channel's. */
export interface StreamPosition {
	/** The incarnation of the channel's history the offset belongs to. */
	epoch: string;
	/** An offset in the channel: 0 is before the first publication. */
	offset: number;
}
export interface SubscribeResult {
	/** The channel subscribed to. */
	channel: string;
	/** The channel's epoch. */
	epoch: string;
	/** The channel's latest offset when the subscription began (0 for a channel with no publications); live publications follow it. */
	offset: number;
	/** What was published after since, oldest first, up to the recovery limit (1000, and 4 MiB of data); empty without since. */
	publications: Publication[];
	/** True when since was given and publications holds everything published after it: nothing was lost. */
	recovered: boolean;
}
export interface UnsubscribeResult {
	/** The channel unsubscribed from. */
	channel: string;
}
export interface WhoamiResult {
	/** True when the caller presented no token. */
	anonymous: boolean;
	/** The connection's id (over HTTP, the request's id). */
	connectionId: string;
	/** When the token expires; absent when it never does. */
	expiresAt?: string;
	permissions: Permissions$1;
	/** websocket or http. */
	transport: string;
	/** The token's subject; empty for anonymous callers. */
	user: string;
}
/** Params of {@link SwitchboardMethods.adminDisconnect}, by name. */
export interface AdminDisconnectParams {
	/** The user (a token's subject) to disconnect. */
	user: string;
	/** Sent as the close frame's reason, cut to 123 bytes; absent, "disconnected by an admin". */
	reason?: string;
}
/** Params of {@link SwitchboardMethods.adminRevoke}, by name. */
export interface AdminRevokeParams {
	/** The user (a token's subject) to cut off. */
	user: string;
	/** When the user's old tokens may be used again; make it no earlier than their expiry. */
	until: string;
}
/** Params of {@link SwitchboardMethods.channelHistory}, by name. */
export interface ChannelHistoryParams {
	/** The channel. */
	channel: string;
	/** The most publications to return, 1 to 1000; absent or 0 means the default page of 100. */
	limit?: number;
	/** Newest first, starting before since. */
	newestFirst?: boolean;
	/** Start after this position (with newestFirst, before it). Its epoch must be the channel's. */
	since?: StreamPosition;
}
/** Params of {@link SwitchboardMethods.channelList}, by name. */
export interface ChannelListParams {
	/** Only channels whose names start with this. */
	prefix?: string;
}
/** Params of {@link SwitchboardMethods.channelPresence}, by name. */
export interface ChannelPresenceParams {
	/** The channel. */
	channel: string;
}
/** Params of {@link SwitchboardMethods.channelPublish}, by name. */
export interface ChannelPublishParams {
	/** The channel: 1 to 255 characters of A-Z a-z 0-9 _ - : and . between segments. */
	channel: string;
	/** The message: any JSON value but null, up to the server's data size limit (64 KiB unless configured). */
	data: unknown;
	/** Up to 128 bytes. A publication repeating a key seen on the channel within the idempotency window publishes nothing and answers the first one's offset. */
	idempotencyKey?: string;
}
/** Params of {@link SwitchboardMethods.channelRemove}, by name. */
export interface ChannelRemoveParams {
	/** The channel. */
	channel: string;
}
/** Params of {@link SwitchboardMethods.channelSubscribe}, by name. */
export interface ChannelSubscribeParams {
	/** The channel to subscribe to. */
	channel: string;
	/** Where the client left off: the offset of the last publication it has, with its epoch. Recovers what was published after it. */
	since?: StreamPosition;
	/** Also receive channelJoin and channelLeave. */
	joinLeave?: boolean;
}
/** Params of {@link SwitchboardMethods.channelUnsubscribe}, by name. */
export interface ChannelUnsubscribeParams {
	/** The channel. */
	channel: string;
}
/** Params of {@link SwitchboardMethods.serverInfo}, by name. */
export interface ServerInfoParams {
}
/** Params of {@link SwitchboardMethods.serverPing}, by name. */
export interface ServerPingParams {
}
/** Params of {@link SwitchboardMethods.sessionRefresh}, by name. */
export interface SessionRefreshParams {
	/** A fresh access token of the connection's user. */
	token: string;
}
/** Params of {@link SwitchboardMethods.sessionWhoami}, by name. */
export interface SessionWhoamiParams {
}
/**
 * A connection subscribed to the channel
 *
 * Sent to subscriptions made with joinLeave.
 */
export interface ChannelJoin {
	/** The channel. */
	channel: string;
	/** The user who joined or left; empty for anonymous callers. */
	user: string;
	/** The connection that joined or left. */
	connectionId: string;
	/** When that connection subscribed. */
	since: string;
}
/**
 * A connection's subscription to the channel ended
 *
 * Sent to subscriptions made with joinLeave, when another subscriber unsubscribes or disconnects.
 */
export interface ChannelLeave {
	/** The channel. */
	channel: string;
	/** The user who joined or left; empty for anonymous callers. */
	user: string;
	/** The connection that joined or left. */
	connectionId: string;
	/** When that connection subscribed. */
	since: string;
}
/**
 * A publication to a subscribed channel
 *
 * Sent for every publication after the subscribe reply's offset, exactly once, in offset order.
 */
export interface ChannelPublication {
	/** The channel. */
	channel: string;
	/** The publication's offset in the channel. */
	offset: number;
	/** The message, as published. */
	data: unknown;
	/** The user who published it; empty for anonymous publishers. */
	publisher: string;
	/** When the server accepted it. */
	time: string;
}
/**
 * The server ended the connection's subscription
 *
 * Nothing more of the channel follows. Reasons: "removed" (the channel was removed; its history is gone and its epoch changed); "permission" (a refreshed token no longer allows the subscription); "interrupted" (with several nodes on Redis, the server could not deliver the channel in order, or Redis lost its data: subscribe again with since to recover, and learn from recovered whether anything was lost).
 */
export interface ChannelUnsubscribed {
	/** The channel whose subscription ended. */
	channel: string;
	/** Why: removed (the channel was removed), permission (a refreshed token no longer allows the subscription), or interrupted (subscribe again with since to recover). */
	reason: string;
}
/**
 * The connection's token is about to expire
 *
 * Sent once per token, a while before it expires (the server's --token-expiry-notice, or halfway through a shorter token's life). Answer with sessionRefresh and a fresh token to keep the connection and its subscriptions; otherwise it closes with 4001 at expiresAt.
 */
export interface SessionExpiring {
	/** When the connection's token expires, and the connection closes with 4001 unless it is refreshed first. */
	expiresAt: string;
}
/** Each method's params and result, by method name: the types behind {@link SwitchboardMethods.call}. */
export interface MethodMap {
	adminDisconnect: {
		params: AdminDisconnectParams;
		result: DisconnectResult;
	};
	adminRevoke: {
		params: AdminRevokeParams;
		result: RevokeResult;
	};
	channelHistory: {
		params: ChannelHistoryParams;
		result: HistoryResult;
	};
	channelList: {
		params: ChannelListParams;
		result: ListResult;
	};
	channelPresence: {
		params: ChannelPresenceParams;
		result: PresenceResult;
	};
	channelPublish: {
		params: ChannelPublishParams;
		result: PublishResult;
	};
	channelRemove: {
		params: ChannelRemoveParams;
		result: RemoveResult;
	};
	channelSubscribe: {
		params: ChannelSubscribeParams;
		result: SubscribeResult;
	};
	channelUnsubscribe: {
		params: ChannelUnsubscribeParams;
		result: UnsubscribeResult;
	};
	serverInfo: {
		params: ServerInfoParams;
		result: ServerInfoResult;
	};
	serverPing: {
		params: ServerPingParams;
		result: PingResult;
	};
	sessionRefresh: {
		params: SessionRefreshParams;
		result: WhoamiResult;
	};
	sessionWhoami: {
		params: SessionWhoamiParams;
		result: WhoamiResult;
	};
}
/** Each notification's params, by notification name. */
export interface NotificationMap {
	channelJoin: ChannelJoin;
	channelLeave: ChannelLeave;
	channelPublication: ChannelPublication;
	channelUnsubscribed: ChannelUnsubscribed;
	sessionExpiring: SessionExpiring;
}
/** The JSON-RPC error codes the server answers with, by name (components.errors in openrpc.json). */
export declare const ErrorCode: {
	/** Unauthorized: the token is missing, invalid or expired */
	readonly Unauthorized: -32001;
	/** Forbidden: the token's permissions do not allow this */
	readonly Forbidden: -32003;
	/** Not found */
	readonly NotFound: -32004;
	/** Conflict with the current state */
	readonly Conflict: -32009;
	/** This method needs a WebSocket connection; it cannot be called over HTTP POST */
	readonly SocketRequired: -32010;
	/** Unavailable: the server is shutting down or overloaded, or its Redis does not answer; retry later */
	readonly Unavailable: -32013;
	/** Limit exceeded: the call would go beyond a configured limit (the message names it) */
	readonly LimitExceeded: -32029;
	/** Invalid request: not a JSON-RPC 2.0 request object, or a batch that is empty or too long */
	readonly InvalidRequest: -32600;
	/** Method not found */
	readonly MethodNotFound: -32601;
	/** Invalid params: the message names the offending field */
	readonly InvalidParams: -32602;
	/** Internal error: a bug on the server; it is logged with its stack */
	readonly InternalError: -32603;
	/** Parse error: the message is not valid JSON */
	readonly ParseError: -32700;
};
/** One of the values of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
/** Options of one call. */
export interface CallOptions {
	/** Cancels the call: it rejects with the signal's reason, and a reply that comes later is dropped. */
	signal?: AbortSignal;
	/** How long to wait for the reply, including any wait for a connection; the client's `timeoutMs` by default. */
	timeoutMs?: number;
}
/** One typed method per JSON-RPC method of the contract, each taking its params by name as one object. */
export declare abstract class SwitchboardMethods {
	/** Calls method with params and resolves with its result; rejects with a SwitchboardError for a server error. */
	abstract call<M extends keyof MethodMap>(method: M, params: MethodMap[M]["params"], options?: CallOptions): Promise<MethodMap[M]["result"]>;
	abstract call(method: string, params?: object | unknown[], options?: CallOptions): Promise<unknown>;
	/**
	 * Closes every WebSocket connection of a user on this node
	 *
	 * Each closes with code 4003 and the reason. The user may connect again at once with a valid token: to keep them out, use adminRevoke. Needs an admin token.
	 */
	adminDisconnect(params: AdminDisconnectParams, options?: CallOptions): Promise<DisconnectResult>;
	/**
	 * Refuses a user's tokens issued until now, and disconnects the user
	 *
	 * Until until, every upgrade, HTTP call and sessionRefresh with a token of the user issued at or before now (in whole seconds, as iat counts them, plus the server's --token-leeway for an issuer whose clock runs ahead; a token without iat counts as old) is refused with -32001; tokens issued later are accepted. The user's connections on this node close with 4003. The revocation is kept in the data directory and outlives a restart. An until that is not in the future lifts the user's revocation. Needs an admin token.
	 */
	adminRevoke(params: AdminRevokeParams, options?: CallOptions): Promise<RevokeResult>;
	/**
	 * Reads a page of a channel's history
	 *
	 * Oldest first, starting after since; with newestFirst, newest first, starting before since. Without since, from the oldest publication kept (or, with newestFirst, the newest). To page on, pass the last publication's offset with the result's epoch as since. Retention trims the oldest publications without renumbering the rest. Needs subscribe permission.
	 */
	channelHistory(params: ChannelHistoryParams, options?: CallOptions): Promise<HistoryResult>;
	/**
	 * Lists the channels the caller may publish or subscribe to
	 *
	 * Channels with history or subscribers whose names start with prefix, in name order, with their subscriber count and latest offset. At most 1000; more says there were others: narrow the prefix.
	 */
	channelList(params?: ChannelListParams, options?: CallOptions): Promise<ListResult>;
	/**
	 * Lists a channel's subscribers
	 *
	 * One member per subscribed connection, oldest first. Needs subscribe permission.
	 */
	channelPresence(params: ChannelPresenceParams, options?: CallOptions): Promise<PresenceResult>;
	/**
	 * Publishes data to a channel
	 *
	 * Answers once the publication is durable, with its offset. Offsets start at 1 and rise by exactly 1 per publication. A publication repeating an idempotencyKey seen on the channel within the server's idempotency window publishes nothing and answers the first one's offset, with duplicate set. Needs publish permission on the channel. Past the server's publication rate for the user, it answers -32029 with data.retryAfterMs. In a batch, channelPublish and channelRemove calls take effect in the batch's order and share commits, and they stop at the first that fails: the batch's later channelPublish and channelRemove calls are not run, and answer -32009.
	 */
	channelPublish(params: ChannelPublishParams, options?: CallOptions): Promise<PublishResult>;
	/**
	 * Deletes a channel's history and ends its subscriptions (admins only)
	 *
	 * Subscribers get channelUnsubscribed with reason "removed". The channel starts again at offset 0 in a new epoch, so clients holding old positions learn that they cannot recover. In a batch, channelPublish and channelRemove calls take effect in the batch's order and share commits, and they stop at the first that fails: the batch's later channelPublish and channelRemove calls are not run, and answer -32009.
	 */
	channelRemove(params: ChannelRemoveParams, options?: CallOptions): Promise<RemoveResult>;
	/**
	 * Subscribes the connection to a channel, recovering what it missed
	 *
	 * From the reply on, the connection receives every later publication of the channel exactly once, in offset order, as channelPublication notifications. With since (a position from an earlier result or publication), publications holds what was published after it, up to the server's recovery limit, and recovered is true only when nothing was lost: the epoch is the same and the history still reaches back that far. Nothing falls between the recovered publications and the live ones, and nothing is in both. When recovered is false, publications holds what could be read after since in the same epoch (none when the epoch changed); reload the channel's state or page through channelHistory. With joinLeave the connection also receives channelJoin and channelLeave. Needs subscribe permission.
	 */
	channelSubscribe(params: ChannelSubscribeParams, options?: CallOptions): Promise<SubscribeResult>;
	/**
	 * Ends the connection's subscription to a channel
	 *
	 * No notification of the channel is sent after the reply.
	 */
	channelUnsubscribe(params: ChannelUnsubscribeParams, options?: CallOptions): Promise<UnsubscribeResult>;
	/** Describes the running server */
	serverInfo(params?: ServerInfoParams, options?: CallOptions): Promise<ServerInfoResult>;
	/**
	 * Checks that the server answers
	 *
	 * Returns the server's clock. Cheap: use it for liveness checks and to measure round trips.
	 */
	serverPing(params?: ServerPingParams, options?: CallOptions): Promise<PingResult>;
	/**
	 * Replaces the connection's token with a fresh one
	 *
	 * The new token must be of the same user. Its expiry and permissions apply from the reply on: the connection now closes with 4001 when the new token expires, and subscriptions the new permissions do not allow end, after the reply, with channelUnsubscribed and reason "permission". Send it when sessionExpiring arrives. A refused token leaves the connection as it was.
	 */
	sessionRefresh(params: SessionRefreshParams, options?: CallOptions): Promise<WhoamiResult>;
	/**
	 * Describes the caller: user, connection and permissions
	 *
	 * Permissions come from the caller's token, or from the server's configuration for anonymous callers.
	 */
	sessionWhoami(params?: SessionWhoamiParams, options?: CallOptions): Promise<WhoamiResult>;
}
/** Ends a listener: the function {@link Emitter.on} returns. */
export type Off = () => void;
/**
 * A small typed event emitter. A listener that throws does not disturb the
 * client: its error is rethrown on its own, where the runtime reports
 * uncaught errors.
 */
export declare class Emitter<Events> {
	#private;
	/** Calls fn with each event of the type, until the returned function is called. */
	on<K extends keyof Events>(type: K, fn: (payload: Events[K]) => void): Off;
	/** Removes fn from the listeners of the type. */
	off<K extends keyof Events>(type: K, fn: (payload: Events[K]) => void): void;
}
/**
 * A place in a channel: the offset of a publication (0 is before the
 * first) in an epoch, the incarnation of the channel's history. Keep the
 * position of the last publication handled, and subscribe `since` it to
 * miss nothing.
 */
export interface Position {
	offset: number;
	epoch: string;
}
/** A JSON-RPC error the server answered with. Compare `code` with {@link ErrorCode}. */
export declare class SwitchboardError extends Error {
	/** The JSON-RPC error code: one of {@link ErrorCode}. */
	readonly code: number;
	/** What the server added, such as `retryAfterMs` for a rate limit. */
	readonly data?: unknown | undefined;
	name: string;
	constructor(
	/** The JSON-RPC error code: one of {@link ErrorCode}. */
	code: number, message: string, 
	/** What the server added, such as `retryAfterMs` for a rate limit. */
	data?: unknown | undefined);
}
/**
 * The connection could not be made, or was lost before a call's reply
 * came: the call may or may not have run. `code` and `reason` are the
 * WebSocket close's, when there was one.
 */
export declare class ConnectionError extends Error {
	readonly code?: number | undefined;
	readonly reason?: string | undefined;
	name: string;
	constructor(message: string, code?: number | undefined, reason?: string | undefined);
}
/** The call, or the connection attempt it waited for, took longer than its `timeoutMs`. */
export declare class TimeoutError extends Error {
	name: string;
}
/** The client was closed: nothing more is sent or received. */
export declare class ClosedError extends Error {
	name: string;
	constructor();
}
/**
 * Publications that the channel's history no longer held when the
 * subscription came back for them. The subscription goes on after them,
 * from `resumed`.
 */
export declare class LostError extends Error {
	readonly channel: string;
	/** The position the subscription had reached. */
	readonly after: Position;
	/** Where it goes on from: the publication after `resumed.offset` is the next one yielded. */
	readonly resumed: Position;
	name: string;
	constructor(channel: string, 
	/** The position the subscription had reached. */
	after: Position, 
	/** Where it goes on from: the publication after `resumed.offset` is the next one yielded. */
	resumed: Position);
	/** The first offset lost, of `after.epoch`. */
	get first(): number;
	/** The last offset lost, when the epoch is the same; undefined when the whole epoch after `after` was lost. */
	get last(): number | undefined;
}
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
export type PublicationOf<T> = Omit<Publication, "data"> & {
	data: T;
};
declare const dispose: typeof Symbol.dispose;
declare const asyncDispose: typeof Symbol.asyncDispose;
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
export declare class Subscription<T = unknown> extends Emitter<SubscriptionEvents> implements AsyncIterableIterator<PublicationOf<T>> {
	#private;
	readonly channel: string;
	/** Settles with the first subscribe: rejects with the server's error if it refused. */
	readonly ready: Promise<void>;
	/**
	 * The position of the last publication yielded (or where a loss said the
	 * subscription goes on from), or the `since` it was made with: keep it
	 * and subscribe since it later, even from another page load, to miss
	 * nothing. Null until the first publication, without `since`.
	 */
	get position(): Position | null;
	next(): Promise<IteratorResult<PublicationOf<T>>>;
	/** Ends the subscription: what `for await` calls when its loop is left early. */
	return(): Promise<IteratorResult<PublicationOf<T>>>;
	[Symbol.asyncIterator](): this;
	/** Ends the subscription; the server's ends with the last one of the channel. */
	unsubscribe(): void;
	[dispose](): void;
	[asyncDispose](): Promise<void>;
}
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
	connecting: {
		attempt: number;
	};
	connected: {
		url: string;
	};
	/**
	 * The connection ended, or an attempt failed. `code` is the WebSocket close code (1006 when there was no close frame).
	 * After 4003 (an admin disconnected the user; `reason` says why) the client is closed: it does not reconnect.
	 */
	disconnected: {
		code: number;
		reason: string;
	};
	/** The client gave up after `reconnect.maxAttempts`: calls waiting are rejected and subscriptions ended. A call or reconnectNow() starts again. */
	failed: {
		attempts: number;
	};
}
/**
 * A Switchboard client. It connects on the first call or subscription and
 * stays connected, reconnecting with backoff, until {@link close}.
 */
export declare class Switchboard extends SwitchboardMethods {
	#private;
	/** The WebSocket URL, without the token. */
	readonly url: string;
	constructor(options?: SwitchboardOptions);
	/** Calls fn with each connection event of the type, until the returned function is called. */
	on<K extends keyof ClientEvents>(type: K, fn: (event: ClientEvents[K]) => void): Off;
	/** Removes fn from the listeners of the type. */
	off<K extends keyof ClientEvents>(type: K, fn: (event: ClientEvents[K]) => void): void;
	/** The connection's state. */
	get state(): ConnectionState;
	/** Subscribes to channel; see {@link Subscription}. */
	subscribe<T = unknown>(channel: string, options?: SubscribeOptions): Subscription<T>;
	call<M extends keyof MethodMap>(method: M, params: MethodMap[M]["params"], options?: CallOptions): Promise<MethodMap[M]["result"]>;
	call(method: string, params?: object | unknown[], options?: CallOptions): Promise<unknown>;
	/** Tries to connect now, without waiting for the backoff delay. */
	reconnectNow(): void;
	/**
	 * Closes the connection and ends everything: calls waiting reject with a
	 * ClosedError, subscriptions end, and no timer or socket is left.
	 */
	close(): void;
	[Symbol.dispose](): void;
}
/**
 * socketURL turns the forms the CLI takes into the WebSocket URL of the
 * server's /rpc route.
 */
export declare function socketURL(raw?: string): string;

export {
	Permissions$1 as Permissions,
};

export {};
