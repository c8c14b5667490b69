// Compiled, never run (npm run check): the types that the generated layer
// gives a caller, and the calls they refuse.
import WebSocket from "ws";
import { ErrorCode, Switchboard, SwitchboardError, type PublishResult, type PublicationOf, type Position, type NotificationMap } from "../dist/switchboard.js";

declare const browserWebSocket: typeof globalThis.WebSocket;

export async function typed(): Promise<void> {
  // Node 20's ws and the browser's WebSocket both fit.
  const sb = new Switchboard({ url: "http://127.0.0.1:8080", token: () => Promise.resolve("t"), WebSocket });
  new Switchboard({ WebSocket: browserWebSocket });

  const pub: PublishResult = await sb.channelPublish({ channel: "chat.lobby", data: { text: "hi" } });
  const offset: number = pub.offset;
  const time: string = (await sb.serverPing()).time;
  const admin: boolean = (await sb.sessionWhoami()).permissions.admin;
  const page = await sb.channelHistory({ channel: "c", limit: 10, since: { offset, epoch: pub.epoch } });
  const first: unknown = page.publications[0]?.data;
  const viaCall: PublishResult = await sb.call("channelPublish", { channel: "c", data: 1 });
  const refreshed: string | undefined = (await sb.sessionRefresh({ token: "t" })).expiresAt;
  const cut: number = (await sb.adminDisconnect({ user: "mallory", reason: "suspended" })).connections;
  const until: string = (await sb.adminRevoke({ user: "mallory", until: "2026-12-31T00:00:00Z" })).until;
  const expiring: NotificationMap["sessionExpiring"] = { expiresAt: "2026-12-31T00:00:00Z" };

  // @ts-expect-error: channel is required
  await sb.channelPublish({ data: 1 });
  // @ts-expect-error: limit is a number
  await sb.channelHistory({ channel: "c", limit: "10" });
  // @ts-expect-error: no such param
  await sb.channelRemove({ channel: "c", force: true });
  // @ts-expect-error: params are by name, one object
  await sb.channelPublish("c", 1);
  // @ts-expect-error: token is required
  await sb.sessionRefresh({});

  const code: -32003 = ErrorCode.Forbidden;
  try {
    await sb.serverInfo();
  } catch (err) {
    if (err instanceof SwitchboardError && err.code === ErrorCode.LimitExceeded) console.log(err.data);
  }

  type Chat = { text: string };
  const sub = sb.subscribe<Chat>("chat.lobby", { joinLeave: true });
  for await (const p of sub) {
    const text: string = p.data.text;
    const at: PublicationOf<Chat> = p;
    console.log(text, at.offset, at.publisher, at.time);
  }
  const where: Position | null = sub.position;
  sub.on("lost", (e) => console.log(e.first, e.last, e.resumed.epoch));
  sub.on("join", (e) => console.log(e.user, e.connectionId));
  sub.on("unsubscribed", (e) => console.log(e.reason));
  sub.on("subscribed", (e) => console.log(e.recovered, e.lost?.first));
  sb.on("disconnected", (e) => console.log(e.code, e.reason));
  // @ts-expect-error: no such event
  sb.on("nothing", () => {});
  {
    using disposable = sb.subscribe("chat.lobby");
    await using alsoDisposable = sb.subscribe("chat.lobby");
    console.log(disposable.channel, alsoDisposable.channel);
  }
  console.log(time, admin, first, viaCall, code, where, refreshed, cut, until, expiring);
  sb.close();
}
