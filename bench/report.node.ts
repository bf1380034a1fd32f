// The bench reporter (runs in Node, inside vitest): collects the `BENCH_JSON <result>` lines the
// workerd benchmarks print, then prints them as one table and writes them, with the machine they
// ran on, to a JSON file. It adds no timing of its own.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, platform, release, totalmem } from "node:os";
import { dirname } from "node:path";
import type { UserConsoleLog } from "vitest";
import type { Reporter, TestModule } from "vitest/node";
import { BENCH_PREFIX, type BenchResult } from "./measure.ts";

function packageVersion(root: string, name: string): string | null {
  try {
    const pkg = JSON.parse(readFileSync(`${root}/node_modules/${name}/package.json`, "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : null;
  } catch {
    return null;
  }
}

function fmt(x: number, unit: string): string {
  if (typeof x !== "number" || !Number.isFinite(x)) return String(x);
  // Plan-cache hits are well under 1 µs: keep two significant digits there.
  if (unit === "rows/s") return x.toFixed(0);
  return unit === "B/row" ? x.toFixed(1) : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2);
}

function cell(side: BenchResult["baseline"], unit: string): string {
  const d = side.dist;
  if (d) return `p50 ${fmt(d.p50, unit)} · p99 ${fmt(d.p99, unit)} · max ${fmt(d.max, unit)} (${side.label})`;
  return `${fmt(side.value, unit)} (${side.label})`;
}

function counts(r: BenchResult): string {
  if (r.baseline.dist || r.subject.dist) return `n ${r.baseline.dist?.n ?? r.rounds} / ${r.subject.dist?.n ?? r.rounds}`;
  return r.repeat ? `${r.rounds} × ${r.opsPerRound * r.repeat.baseline} / ${r.opsPerRound * r.repeat.subject}` : `${r.rounds} × ${r.opsPerRound}`;
}

export function table(results: readonly BenchResult[]): string {
  const head = ["benchmark", "baseline", "subject", "unit", "ratio", "rounds × ops"];
  const rows = results.map((r) => [
    r.name,
    cell(r.baseline, r.unit),
    cell(r.subject, r.unit),
    r.unit,
    // A ratio that is not a number (NaN travels as null in JSON) prints as such, not as a crash.
    typeof r.ratio !== "number" || !Number.isFinite(r.ratio) ? "n/a" : `${r.ratio >= 100 ? r.ratio.toFixed(0) : r.ratio.toFixed(2)}×`,
    counts(r),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 4 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export class BenchReporter implements Reporter {
  readonly #out: string;
  readonly #root: string;
  readonly #results: BenchResult[] = [];

  /** `out`: the JSON file to write; `root`: the repository (for tool versions). */
  constructor(opts: { out: string; root: string }) {
    this.#out = opts.out;
    this.#root = opts.root;
  }

  onUserConsoleLog(log: UserConsoleLog): void {
    for (const l of log.content.split("\n")) {
      if (l.startsWith(BENCH_PREFIX)) this.#results.push(JSON.parse(l.slice(BENCH_PREFIX.length)) as BenchResult);
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const ok = testModules.every((m) => m.ok());
    if (this.#results.length === 0) {
      console.log("\nbench: no results were reported");
      return;
    }
    console.log(`\n${table(this.#results)}\n`);
    console.log("ratio = subject / baseline (timings: median of per-round ratios, rounds interleaved in one process)");
    console.log("rounds × a / b: baseline ran a and subject b operations per round; n a / b: samples of a distribution (ms, one run)");
    const doc = {
      date: new Date().toISOString(),
      complete: ok,
      machine: {
        node: process.version,
        platform: `${platform()} ${release()}`,
        arch: arch(),
        cpu: cpus()[0]?.model ?? "unknown",
        cpus: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
      },
      tools: {
        workerd: packageVersion(this.#root, "workerd"),
        miniflare: packageVersion(this.#root, "miniflare"),
        vitest: packageVersion(this.#root, "vitest"),
        "@cloudflare/vitest-plugin": packageVersion(this.#root, "@cloudflare/vitest-plugin"),
      },
      results: this.#results,
    };
    mkdirSync(dirname(this.#out), { recursive: true });
    writeFileSync(this.#out, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`bench: wrote ${this.#out}${ok ? "" : " (incomplete: a benchmark failed)"}`);
  }
}
