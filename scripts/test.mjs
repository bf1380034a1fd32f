#!/usr/bin/env node
// `npm test`: runs the vitest projects one after the other (workerd first, then Node), each
// through scripts/node22.mjs.
//
// Startup watchdog: on this machine the workers pool has, a few times in many runs, stalled
// after "RUN" without ever starting workerd (no test file ran, nothing was printed, nothing
// failed). A stalled start is not a test result, so if a project prints no finished test file
// within STARTUP_STALL_SECONDS, its process group is killed and the project is started again
// (at most twice). Once any test file has reported, the run is never restarted: failures and
// slow tests are reported as they are. Extra arguments are passed to vitest.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const projects = ["workers", "node"];
const stallSeconds = Number(process.env.STARTUP_STALL_SECONDS ?? 240);
const maxAttempts = 3;
const extra = process.argv.slice(2);

function runOnce(project) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "scripts/node22.mjs"), "vitest", "run", "--project", project, ...extra], {
      cwd: root,
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // own process group, so a stall can be killed with everything it started
    });
    let started = false;
    const watch = (chunk) => {
      if (!started && /\.test\.ts/.test(chunk.toString())) started = true;
    };
    child.stdout.on("data", (c) => {
      watch(c);
      process.stdout.write(c);
    });
    child.stderr.on("data", (c) => {
      watch(c);
      process.stderr.write(c);
    });
    const timer = setTimeout(() => {
      if (started) return;
      console.error(`\n[test] project ${project}: no test file finished within ${stallSeconds}s of starting; killing it`);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      resolve({ stalled: true, code: 1 });
    }, stallSeconds * 1000);
    const forward = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {}
    };
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
      process.on(sig, () => {
        forward(sig);
        process.exit(1);
      });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ stalled: false, code: code ?? (signal ? 1 : 0) });
    });
  });
}

for (const project of projects) {
  let result;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    result = await runOnce(project);
    if (!result.stalled) break;
    if (attempt < maxAttempts) console.error(`[test] project ${project}: starting again (attempt ${attempt + 1} of ${maxAttempts})`);
  }
  if (result.code !== 0) {
    console.error(`[test] project ${project} failed${result.stalled ? " (it never started a test file)" : ""}`);
    process.exit(result.code || 1);
  }
}
