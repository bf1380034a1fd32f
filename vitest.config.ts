import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects: code that runs in workerd (Durable Objects, the Worker) is tested inside workerd;
// pure code, the client SDK and the CLI are tested in Node.
export default defineConfig({
  test: {
    projects: [
      {
        // cf: false: no fetch of the Request.cf object from the network (this machine has none).
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { cf: false } })],
        // 20 s a test: several workerd tests make dozens of Durable Object calls, and a loaded 2-core
        // CI machine runs them several times slower than an idle one.
        test: { name: "workers", include: ["test/workers/**/*.test.ts"], testTimeout: 20_000 },
      },
      {
        test: {
          name: "node",
          include: ["topology/**/*.test.ts", "gate/**/*.test.ts", "tablet/**/*.test.ts", "client/**/*.test.ts", "cli/**/*.test.ts", "test/node/**/*.test.ts"],
          environment: "node",
        },
      },
    ],
  },
});
