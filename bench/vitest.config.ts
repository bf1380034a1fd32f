import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  plugins: [cloudflareTest({ wrangler: { configPath: fileURLToPath(new URL("../wrangler.toml", import.meta.url)) } })],
  test: { name: "bench", include: ["bench/**/*.bench.test.ts"], testTimeout: 120_000 },
});
