// `wrangler dev` for end-to-end tests: started on a free port with its own --persist-to dir,
// stopped with everything it started; and the real vtctl CLI run against it as a child process.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const root = join(import.meta.dirname, "..", "..");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export interface DevServer {
  readonly url: string;
  /** Its --persist-to directory (removed by stop unless `keepState`). */
  readonly state: string;
  /** What it printed so far. */
  log(): string;
  /** Stops it; `keepState` leaves its --persist-to directory for a server started on it again. */
  stop(keepState?: boolean): void;
}

/**
 * Starts `wrangler dev` (on the state a stopped one kept, when given) and answers once /healthz does
 * (within `startMs`). `configs` runs several Workers in one session (`-c` each; the first is served).
 */
export async function startDev(startMs = 90_000, keptState?: string, configs: readonly string[] = []): Promise<DevServer> {
  const port = await freePort();
  const state = keptState ?? mkdtempSync(join(tmpdir(), "vitess-do-e2e-"));
  const url = `http://127.0.0.1:${port}`;
  const dev: ChildProcess = spawn(
    process.execPath,
    [
      "scripts/node22.mjs",
      "wrangler",
      "dev",
      ...configs.flatMap((c) => ["-c", c]),
      "--port",
      String(port),
      "--ip",
      "127.0.0.1",
      "--persist-to",
      state,
      "--inspector-port",
      "0",
    ],
    {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group, so stop() ends workerd too
    },
  );
  let log = "";
  dev.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  dev.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const server: DevServer = {
    url,
    state,
    log: () => log,
    stop(keepState = false) {
      if (dev.pid) {
        try {
          process.kill(-dev.pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
      if (!keepState) rmSync(state, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + startMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return server;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || dev.exitCode !== null) {
      server.stop();
      throw new Error(`wrangler dev did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface VtctlResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `vtctl --server <url> …args` as a child process without blocking the event loop. */
export function vtctl(url: string, ...args: string[]): Promise<VtctlResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "cli", "vtctl.mjs"), "--server", url, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
