#!/usr/bin/env node
// Runs a tool from node_modules/.bin under a Node new enough for wrangler (>= 22.12).
// On an older Node it takes Node 22 from the npm registry (package node-<platform>-<arch>)
// through npx, so `npm run dev` / `npm test` work on the machine's Node 20 unchanged.
import { spawn } from "node:child_process";
import { realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [tool, ...args] = process.argv.slice(2);
if (!tool) {
  console.error("usage: node scripts/node22.mjs <tool> [args...]");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
let entry;
try {
  entry = realpathSync(join(root, "node_modules", ".bin", tool));
} catch {
  console.error(`node22: ${tool} is not installed; run npm install first`);
  process.exit(2);
}
const [major, minor] = process.versions.node.split(".").map(Number);
const modern = major > 22 || (major === 22 && minor >= 12);
const platformPkg = `node-${process.platform}-${process.arch}@22`;
const [cmd, cmdArgs] = modern ? [process.execPath, [entry, ...args]] : ["npx", ["-y", "-p", platformPkg, "--", "node", entry, ...args]];
const child = spawn(cmd, cmdArgs, { stdio: "inherit", env: process.env });
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => child.kill(sig));
}
child.on("exit", (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
