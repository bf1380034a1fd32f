import { describe, expect, it } from "vitest";
import { sql } from "./helpers.ts";

interface Node {
  operator: string;
  opcode?: string;
  shards?: string[];
  query?: { sql: string; params: unknown[] };
  inputs?: Node[];
}

const plan = async (text: string, params?: unknown): Promise<Node> => JSON.parse(String((await sql(`VEXPLAIN ${text}`, params)).rows[0]?.[0])) as Node;

describe("VEXPLAIN", () => {
  it("shows the operator tree and the SQL each shard gets, without running it", async () => {
    await sql("CREATE TABLE vx (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)");
    const point = await plan("SELECT name FROM vx WHERE id = ?", [7]);
    expect(point.operator).toBe("PointRoute");
    const route = point.inputs?.[0];
    expect(route?.opcode).toBe("equal");
    expect(route?.shards).toHaveLength(1);
    expect(route?.query).toEqual({ sql: "SELECT name FROM vx WHERE id = (? + 0)", params: ["7"] });

    const ordered = await plan("SELECT id FROM vx ORDER BY n DESC LIMIT 5 OFFSET 2");
    expect(ordered.operator).toBe("Limit");
    expect(ordered.inputs?.[0]?.operator).toBe("MergeSort");
    const scatter = ordered.inputs?.[0]?.inputs?.[0];
    expect(scatter?.shards).toEqual(["-80", "80-"]);
    expect(scatter?.query?.sql).toBe("SELECT id, n AS _vtg_ord0 FROM vx ORDER BY n DESC LIMIT 7");

    const agg = await plan("SELECT n, count(*) FROM vx GROUP BY n");
    expect(agg.operator).toBe("Aggregate");

    const ins = await plan("INSERT INTO vx VALUES (1, 'a', 1), (2, 'b', 2)");
    expect(ins.operator).toBe("Insert");
    expect((await sql("SELECT count(*) FROM vx")).rows).toEqual([[0]]);
  });
});
