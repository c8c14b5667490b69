// Starts Debian's Chromium (apt-get install chromium) through
// playwright-core, which downloads no browser of its own.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

// launchBrowser returns a browser whose close() also removes its profile.
// The flags let it run as root in a container, and keep it off the
// network it would otherwise call at every start (this machine's network
// is closed, and refuses those calls many at a time).
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), "switchboard-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
