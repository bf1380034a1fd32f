// JSON has one kind of number: over HTTP a REAL whose value is integral is written as a JSON
// integer (`SELECT 1.0` answers `1`), and beyond ±(2^53−1) a plain JSON number is always a REAL
// (integers there are {"int": …}). Params are read by value: `2.0` binds as an INTEGER.

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

async function rawSql(body: string): Promise<{ status: number; text: string }> {
  const res = await exports.default.fetch(new Request("http://gate/v1/sql", { method: "POST", headers: { "content-type": "application/json" }, body }));
  return { status: res.status, text: await res.text() };
}

describe("numbers over JSON", () => {
  it("an integral REAL is a JSON integer; beyond 2^53 a plain number is a REAL and an integer is {int}", async () => {
    const r = await rawSql(
      JSON.stringify({ sql: "SELECT 1.0 AS a, typeof(1.0) AS ta, 2.5 AS b, 1e16 AS c, typeof(1e16) AS tc, 9007199254740993 AS d, -3.0 AS e" }),
    );
    expect(r.status).toBe(200);
    expect(r.text).toContain('"rows":[[1,"real",2.5,10000000000000000,"real",{"int":"9007199254740993"},-3]]');
  });

  it("a JSON param 2.0 or 1e3 binds as an INTEGER, 1e16 as a REAL, digits beyond 2^53 as the exact INTEGER", async () => {
    const r = await rawSql(
      '{"sql": "SELECT typeof(?), ?, typeof(?), typeof(?), typeof(?), ?", "params": [2.0, 2.0, 1e3, 1e16, 9007199254740993, 9007199254740993]}',
    );
    expect(r.status).toBe(200);
    expect(r.text).toContain('"rows":[["integer",2,"integer","real","integer",{"int":"9007199254740993"}]]');
  });
});
