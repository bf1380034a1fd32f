import { describe, expect, it } from "vitest";
import { renderResult } from "./format.mjs";

describe("renderResult", () => {
  it("prints one multi-line cell (a VEXPLAIN plan) as it is, and other results as a table", () => {
    const plan = '{\n  "operator": "Route"\n}';
    expect(renderResult({ columns: ["plan"], rows: [[plan]], rowsAffected: 0 })).toBe(`${plan}\n`);
    const table = renderResult({ columns: ["a"], rows: [["x"], ["y"]], rowsAffected: 0 });
    expect(table).toContain("| a |");
    expect(table).toContain("2 rows");
  });
});
