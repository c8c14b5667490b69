// Starts a real Switchboard server for the tests: the binary that
// `make build` writes (or $SWITCHBOARD_BIN), on a random loopback port,
// with a fresh data directory.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..");
const binary = process.env.SWITCHBOARD_BIN || path.join(repoRoot, "bin", "switchboard");

const listeningLine = /listening on http:\/\/([0-9.]+):(\d+)/;
const startTimeout = 15_000;

// startServer runs `switchboard serve` and resolves once it listens and has
// printed its admin token. stop() ends it with SIGTERM, the way an
// operator does, and removes the data directory; restart() kills it
// (SIGKILL unless told otherwise) and starts it again on the same port and
// data directory, as a crash and a supervisor would.
export async function startServer(...args) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "switchboard-sdk-"));
  let proc;
  let info;
  try {
    proc = await serve(dataDir, "127.0.0.1:0", args);
    info = await proc.ready;
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const base = `http://${info.host}:${info.port}`;
  return {
    ...info,
    base,
    rpcURL: `${base}/rpc`,
    dataDir,
    // createToken creates a token for user with the given permission flags of
    // `switchboard token create`.
    async createToken(user, ...flags) {
      return run(["token", "create", "--data", dataDir, "--sub", user, ...flags]);
    },
    async restart(signal = "SIGKILL") {
      proc.kill(signal);
      await proc.exited;
      proc = await serve(dataDir, `${info.host}:${info.port}`, args);
      await proc.ready;
    },
    async stop() {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      rmSync(dataDir, { recursive: true, force: true });
      if (code !== 0) throw new Error(`switchboard serve exited with ${code}:\n${proc.stderr()}`);
    },
  };
}

// serve starts the binary on listen; its ready resolves with the address
// and admin token it printed, or rejects (having killed it) if it did not
// get that far.
function serve(dataDir, listen, args) {
  const proc = spawn(binary, ["serve", "--listen", listen, "--data", dataDir, "--log-level", "warn", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (b) => { stderr += b; });
  const exited = new Promise((resolve) => proc.once("exit", resolve));

  const lines = createInterface({ input: proc.stdout });
  const ready = new Promise((resolve, reject) => {
    let host, port, tokenNext = false;
    lines.on("line", (line) => {
      const m = listeningLine.exec(line);
      if (m) [, host, port] = m;
      if (tokenNext) {
        tokenNext = false;
        resolve({ host, port: Number(port), token: line.trim() });
      }
      if (line.startsWith("Admin token")) tokenNext = true;
    });
    proc.once("error", (err) => reject(new Error(`cannot run ${binary} (run make build first): ${err.message}`)));
    exited.then((code) => reject(new Error(`switchboard serve exited with ${code} before it was ready:\n${stderr}`)));
    setTimeout(() => reject(new Error(`switchboard serve was not ready in ${startTimeout} ms:\n${stderr}`)), startTimeout).unref();
  });
  ready.catch(() => proc.kill("SIGKILL"));
  return Promise.resolve({ ready, exited, kill: (sig) => proc.kill(sig), stderr: () => stderr });
}

function run(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (b) => { out += b; });
    p.stderr.on("data", (b) => { err += b; });
    p.once("error", reject);
    p.once("exit", (code) => code === 0 ? resolve(out.trim()) : reject(new Error(`switchboard ${args.join(" ")}: exit ${code}: ${err}`)));
  });
}
