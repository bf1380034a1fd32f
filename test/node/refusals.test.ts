// Every UNSUPPORTED refusal carries a catalogue id: the catalogue lists exactly the ids the code
// throws, and no code path builds an UNSUPPORTED error without one.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REFUSALS, RETIRED_REFUSALS } from "../../topology/refusals.ts";

const root = join(import.meta.dirname, "../..");

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(join(root, p)).isDirectory()) return sources(p);
    return p.endsWith(".ts") && !p.endsWith(".test.ts") ? [p] : [];
  });
}

const files = ["contract", "gate", "tablet", "topology", "vreplication", "workflows", "client"].flatMap(sources);
const text = files.map((f) => [f, readFileSync(join(root, f), "utf8")] as const);

describe("refusal catalogue", () => {
  it("has an entry for every id thrown, and every entry is thrown somewhere", () => {
    const used = new Set<string>();
    for (const [, src] of text) for (const m of src.matchAll(/unsupported(?:Error)?\(\s*"(VD\d+)"/g)) used.add(m[1] as string);
    // The SDK's own refusals (it imports only the contract): new VitessError("UNSUPPORTED", …, { id: "VDnnnn" }).
    for (const [, src] of text)
      for (const m of src.matchAll(/new VitessError\(\s*"UNSUPPORTED",[\s\S]*?\{ id: "(VD\d+)" \},?\s*\);/g)) used.add(m[1] as string);
    expect([...used].filter((id) => !(id in REFUSALS))).toEqual([]);
    expect(Object.keys(REFUSALS).filter((id) => !used.has(id))).toEqual([]);
    // A retired id is thrown nowhere and names nothing else.
    expect(Object.keys(RETIRED_REFUSALS).filter((id) => used.has(id) || id in REFUSALS)).toEqual([]);
  });

  it("no UNSUPPORTED error is built without an id", () => {
    const bare = text.filter(([f, src]) => !f.endsWith("refusals.ts") && /new VtError\(\s*"UNSUPPORTED"/.test(src)).map(([f]) => f);
    expect(bare).toEqual([]);
    const sdk = text.flatMap(([f, src]) =>
      [...src.matchAll(/new VitessError\(\s*"UNSUPPORTED",[\s\S]*?\);/g)].filter((m) => !/\{ id: "VD\d+" \}/.test(m[0])).map(() => f),
    );
    expect(sdk).toEqual([]);
  });
});
