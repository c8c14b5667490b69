// A TCP proxy in front of the server, so that a test can cut a client's
// connection (the way a network does) while the server runs on.
import net from "node:net";

export async function startProxy(port, host = "127.0.0.1") {
  const pairs = new Set();
  let paused = false;
  const server = net.createServer((down) => {
    if (paused) return down.destroy();
    const up = net.connect(port, host);
    const pair = [down, up];
    pairs.add(pair);
    down.pipe(up).on("error", () => {});
    up.pipe(down).on("error", () => {});
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on("close", end).on("error", end);
    up.on("close", end).on("error", end);
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  return {
    url: `http://${host}:${server.address().port}`,
    get connections() { return pairs.size; },
    // cut drops every connection at once, with no close frame.
    cut() {
      for (const [down, up] of pairs) { down.destroy(); up.destroy(); }
      pairs.clear();
    },
    // pause cuts every connection and refuses new ones until resume.
    pause() {
      paused = true;
      this.cut();
    },
    resume() {
      paused = false;
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
