// `npm run bench`: the benchmarks run in workerd like the workers tests, but from their own
// config, so `npm test` never picks them up (its include globs do not reach bench/). Files run
// one at a time so that no two benchmarks share the machine. Results: a table on stdout and
// bench/results/latest.json (gitignored).

import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { BENCH_PREFIX } from "./measure.ts";
import { BenchReporter } from "./report.node.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

export default defineConfig({
  root,
  plugins: [cloudflareTest({ wrangler: { configPath: fileURLToPath(new URL("../wrangler.toml", import.meta.url)) } })],
  test: {
    name: "bench",
    include: ["bench/**/*.bench.test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    reporters: ["default", new BenchReporter({ out: fileURLToPath(new URL("./results/latest.json", import.meta.url)), root })],
    // The reporter collects BENCH_JSON lines; keep them out of the default output.
    onConsoleLog: (log) => (log.startsWith(BENCH_PREFIX) ? false : undefined),
  },
});
