// Timing for the benchmarks that run inside workerd. Every result is a ratio of a subject to a
// baseline measured in the same process, in interleaved rounds (baseline first in even rounds,
// subject first in odd ones) so that drift — a growing table, a warming JIT, a busy machine —
// lands on both sides alike. Nothing here asserts on speed.

/** The line prefix bench/report.node.ts collects from the test output. */
export const BENCH_PREFIX = "BENCH_JSON ";

export type BenchUnit = "µs/op" | "B/row" | "rows/s" | "ms";

export interface BenchSide {
  readonly label: string;
  /** Median over rounds (µs/op), or the single measurement (B/row). */
  readonly value: number;
  /** Per-round values, in round order (a distribution: its samples, in the order taken). */
  readonly rounds: readonly number[];
  /** Set for a distribution (unit "ms"): value is its p50. */
  readonly dist?: Percentiles;
}

export interface Percentiles {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface BenchResult {
  readonly name: string;
  readonly unit: BenchUnit;
  readonly baseline: BenchSide;
  readonly subject: BenchSide;
  /**
   * subject / baseline. For timings: the median of the per-round ratios, each taken between the
   * two sides of the same round (so it can differ slightly from subject.value / baseline.value).
   */
  readonly ratio: number;
  readonly rounds: number;
  readonly opsPerRound: number;
  /** Set when one side ran `repeat` × opsPerRound operations per round (see ComparisonSide). */
  readonly repeat?: { readonly baseline: number; readonly subject: number };
  /** Shortest timed round, in ms; with a 1 ms clock, rounds under ~20 ms are coarse. */
  readonly minRoundMs: number;
  readonly note: string;
}

/** Runs `ops` operations and returns how long they took, in ms, timed where they ran. */
export type Timed = (ops: number) => Promise<number>;

export interface ComparisonSide {
  readonly label: string;
  readonly run: Timed;
  /**
   * This side runs `repeat` × opsPerRound operations per round (default 1), for a side so much
   * cheaper than the other that equal counts would leave its rounds too short to time. Its µs/op
   * and the ratio are per operation; minRoundMs stays the real length of a round.
   */
  readonly repeat?: number;
}

export interface Comparison {
  readonly name: string;
  readonly note: string;
  readonly baseline: ComparisonSide;
  readonly subject: ComparisonSide;
  readonly rounds: number;
  readonly opsPerRound: number;
  /** Operations per side run once before timing (plan cache, DO start-up, JIT). */
  readonly warmupOps: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? Number.NaN) + (s[mid] ?? Number.NaN)) / 2;
}

/** The nearest-rank percentile `p` (0–100) of `xs`; NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

/** A side that is a distribution of samples (ms), taken in one run: its value is the p50. */
export function distribution(label: string, samples: readonly number[]): BenchSide {
  const dist = { n: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: Math.max(...samples) };
  return { label, value: dist.p50, rounds: samples.map((x) => Math.round(x * 10) / 10), dist };
}

/** Wraps an async loop of single operations, timed around the whole loop. */
export function timedLoop(op: (i: number) => Promise<void>): Timed {
  return async (ops) => {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) await op(i);
    return performance.now() - t0;
  };
}

export async function compare(c: Comparison): Promise<BenchResult> {
  const repeat = { baseline: c.baseline.repeat ?? 1, subject: c.subject.repeat ?? 1 };
  await c.baseline.run(c.warmupOps * repeat.baseline);
  await c.subject.run(c.warmupOps * repeat.subject);
  const base: number[] = [];
  const subj: number[] = [];
  const ratios: number[] = [];
  let minRoundMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < c.rounds; r++) {
    const order = r % 2 === 0 ? (["baseline", "subject"] as const) : (["subject", "baseline"] as const);
    const ms = { baseline: 0, subject: 0 };
    for (const side of order) ms[side] = await c[side].run(c.opsPerRound * repeat[side]);
    for (const side of order) {
      // A frozen clock (workerd's Spectre mitigation outside local mode) would read 0 here.
      if (!(ms[side] > 0)) throw new Error(`${c.name}: ${side} round ${r} measured ${ms[side]} ms; the clock did not advance`);
    }
    minRoundMs = Math.min(minRoundMs, ms.baseline, ms.subject);
    base.push((ms.baseline * 1000) / (c.opsPerRound * repeat.baseline));
    subj.push((ms.subject * 1000) / (c.opsPerRound * repeat.subject));
    ratios.push(ms.subject / repeat.subject / (ms.baseline / repeat.baseline));
  }
  return {
    name: c.name,
    unit: "µs/op",
    baseline: { label: c.baseline.label, value: median(base), rounds: base },
    subject: { label: c.subject.label, value: median(subj), rounds: subj },
    ratio: median(ratios),
    rounds: c.rounds,
    opsPerRound: c.opsPerRound,
    ...(repeat.baseline !== 1 || repeat.subject !== 1 ? { repeat } : {}),
    minRoundMs,
    note: c.note,
  };
}

/** Prints one result for the reporter; the only output contract between workerd and Node. */
export function emit(result: BenchResult): void {
  console.log(BENCH_PREFIX + JSON.stringify(result));
}
