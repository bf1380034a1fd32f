// The dependency order is a line: contract ← topology ← tablet ← vreplication ← workflows. The
// contract leaf imports nothing of ours; the gate uses the contract and topology's pure code and
// reaches tablets, the Topology and Catalogs only through the contract's RPC interfaces; the
// client SDK needs nothing but the contract; and no chain of runtime imports comes back to where it
// began. Type-only imports count for the order (a type is a dependency too), not for cycles: the
// client's one public API file declares types its implementation imports.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");

/** Layers in order: a file may import its own layer and the layers before it. */
const LAYERS = ["contract", "topology", "tablet", "vreplication", "workflows"] as const;
const FOLDERS = [...LAYERS, "gate", "client"];
/** The Worker's entry: it exports the Durable Object and Workflow classes wrangler binds, so it may import them. */
const ENTRY = "gate/index.ts";

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(join(root, p)).isDirectory()) return sources(p);
    return p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith(".d.ts") ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*((?:import|export)\b[^;"'`]*?)\bfrom\s*"([^"]+)"|\bimport\s*\(\s*"([^"]+)"\s*\)|(?:^|\n)\s*import\s*"([^"]+)"/g;

interface Edge {
  readonly to: string;
  /** `import type …`, or braces holding only `type …` names: nothing of it exists at run time. */
  readonly typeOnly: boolean;
}

/** The repository files a source imports (relative specifiers only: packages are not ours). */
function importsOf(file: string, src: string): Edge[] {
  const out: Edge[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[2] ?? m[3] ?? m[4];
    if (!spec?.startsWith(".")) continue;
    const head = m[1] ?? "";
    const names =
      /\{([^}]*)\}/
        .exec(head)?.[1]
        ?.split(",")
        .map((n) => n.trim())
        .filter(Boolean) ?? [];
    const typeOnly = /^(import|export)\s+type\b/.test(head) || (names.length > 0 && names.every((n) => n.startsWith("type ")));
    out.push({ to: normalize(join(dirname(file), spec)), typeOnly });
  }
  return out;
}

const files = FOLDERS.flatMap(sources);
const text = new Map(files.map((f) => [f, readFileSync(join(root, f), "utf8")]));
const graph = new Map(files.map((f) => [f, importsOf(f, text.get(f) ?? "")]));
const folderOf = (f: string): string => f.split("/")[0] ?? "";
const layerOf = (f: string): number => (LAYERS as readonly string[]).indexOf(folderOf(f));
/** Files that define a Durable Object or Workflow class: callers hold an RPC interface instead. */
const bindings = new Set(files.filter((f) => /\bextends\s+(DurableObject|WorkflowEntrypoint)\b/.test(text.get(f) ?? "")));

/** Every rule the graph breaks, as "<file> -> <imported>: <rule>". */
function violations(): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    const from = folderOf(file);
    for (const { to: dep } of deps) {
      const to = folderOf(dep);
      const bad = (rule: string) => out.push(`${file} -> ${dep}: ${rule}`);
      if (!FOLDERS.includes(to)) bad("imports outside the source folders");
      else if (from === "contract" && to !== "contract") bad("the contract leaf imports nothing of ours");
      else if (layerOf(file) >= 0 && (layerOf(dep) < 0 || layerOf(dep) > layerOf(file)))
        bad(`${from} may import only ${LAYERS.slice(0, layerOf(file) + 1).join(", ")}`);
      else if (from === "client" && to !== "client" && to !== "contract") bad("the client SDK needs only the contract");
      else if (from === "gate" && file !== ENTRY && to !== "gate" && to !== "contract" && to !== "topology")
        bad("the gate reaches tablets only through the contract");
      if (bindings.has(dep) && file !== ENTRY) bad("a Durable Object class is reached through its RPC interface");
    }
  }
  return out;
}

/** Runtime import cycles, each as the files around it. */
function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, "open");
    stack.push(f);
    for (const { to: dep } of (graph.get(f) ?? []).filter((e) => !e.typeOnly)) {
      if (state.get(dep) === "open") found.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (!state.has(dep) && graph.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe("import graph", () => {
  it("reads the imports of every source file", () => {
    expect(graph.get("gate/executor.ts")?.length ?? 0).toBeGreaterThan(0);
    expect(bindings).toContain("tablet/tablet.ts");
    expect(bindings).toContain("topology/topology-do.ts");
  });

  it("follows contract ← topology ← tablet ← vreplication ← workflows, with the gate and client on the contract", () => {
    expect(violations()).toEqual([]);
  });

  it("has no cycle", () => {
    expect(cycles()).toEqual([]);
  });
});
