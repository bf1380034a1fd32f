// The SQLite-faithful lexer, the parser/SQLite agreement check and inlined literals. Where the
// lexer claims to know where SQLite's first statement ends, SQLite's own prepare() is the judge.
import fc from "fast-check";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { parseOne } from "../../gate/sql/parse.ts";
import { inlineLiteral } from "../../gate/sql/template.ts";
import { toVtError } from "../../contract/errors.ts";
import { checkShardSql } from "../../topology/shard-sql-guard.ts";
import { tokenize } from "../../topology/sql-lexer.ts";
import type { SqlValue } from "../../contract/sql-values.ts";

const kinds = (s: string): string[] =>
  tokenize(s)
    .filter((t) => t.kind !== "space")
    .map((t) => `${t.kind}:${s.slice(t.start, t.end)}`);

function refusal(sql: string): { code: string; id?: unknown } {
  try {
    parseOne(sql);
  } catch (e) {
    const vt = toVtError(e);
    return { code: vt.code, id: vt["id"] };
  }
  return { code: "OK" };
}

describe("lexer: tokenize.c rules", () => {
  it.each([
    ["SELECT 1--5", ["word:SELECT", "number:1", "comment:--5"]],
    ["a#x", ["word:a", "variable:#x"]],
    ["$a::b(c) $d(e f)", ["variable:$a::b(c)", "illegal:$d(e", "word:f", "op:)"]],
    ["'it''s' \"a\"\"b\" `c` [d]]", ["string:'it''s'", 'quoted:"a""b"', "quoted:`c`", "quoted:[d]", "illegal:]"]],
    ["/* a /* b */ c */", ["comment:/* a /* b */", "word:c", "op:*", "op:/"]],
    ["/* open", ["comment:/* open"]],
    ["/*", ["op:/", "op:*"]],
    ["1e 1e5 1.5e-3 .5 5. 0x 0x1F 1_000", ["illegal:1e", "number:1e5", "number:1.5e-3", "number:.5", "number:5.", "illegal:0x", "number:0x1F", "number:1_000"]],
    ["x'0A' X'0' x'zz'", ["blob:x'0A'", "illegal:X'0'", "illegal:x'zz'"]],
    ["a\u00a0b é", ["word:a\u00a0b", "word:é"]],
    ["?12 ? :a @b $c", ["variable:?12", "variable:?", "variable::a", "variable:@b", "variable:$c"]],
    ["a ->> b != c || d <> e", ["word:a", "op:->>", "word:b", "op:!=", "word:c", "op:||", "word:d", "op:<>", "word:e"]],
    ["1 \v,\v2", ["number:1", "op:,", "illegal:\v", "number:2"]],
    ["-- no newline;", ["comment:-- no newline;"]],
    ["'a\\' x \\", ["string:'a\\'", "word:x", "illegal:\\"]],
    ["a\u0000b", ["word:a", "illegal:\u0000", "word:b"]],
  ])("%j", (sql, expected) => {
    expect(kinds(sql)).toEqual(expected);
  });

  it("finds the end of SQLite's first statement where prepare() does (property)", () => {
    // Invariant: when SQLite accepts a text, its first statement ends at the lexer's first `;`
    // (or at the end), and SQLite refuses any text in which the lexer finds an illegal token first.
    const db = new DatabaseSync(":memory:");
    const frag = fc.constantFrom(
      "'a;b'",
      "'it''s'",
      '"x;y"',
      "`z;`",
      "[w;]",
      "/* ; */",
      "-- ;\n",
      "\n",
      " ",
      "\t",
      "1",
      "a",
      ",",
      "-",
      "+",
      "#",
      "$a(;)",
      "x'00'",
      "1e5",
      ".5",
      "?",
      ":n",
      "\u00a0",
      "é",
      "/*",
      ";",
      "'",
      "--",
    );
    fc.assert(
      fc.property(fc.array(frag, { maxLength: 10 }), (parts) => {
        const sql = `SELECT 1 AS k ${parts.join("")}`;
        const toks = tokenize(sql);
        const semi = toks.find((t) => t.kind === "semi");
        const illegal = toks.find((t) => t.kind === "illegal");
        let source: string | undefined;
        try {
          source = db.prepare(sql).sourceSQL;
        } catch {
          return;
        }
        expect(illegal === undefined || (semi !== undefined && semi.start < illegal.start), sql).toBe(true);
        expect(source.length, sql).toBe(semi ? semi.end : sql.length);
      }),
      { numRuns: 2000 },
    );
    db.close();
  });
});

describe("the gate refuses text its parser and SQLite read differently", () => {
  it.each([
    ["`#` (a comment to the parser, a parameter to SQLite)", "SELECT 1 AS a, #x, (SELECT count(*) FROM _vt_binlog) AS leak,\n 2 AS b", "UNSUPPORTED", "VD2000"],
    ["TCL-style $a(…)", "SELECT $a(x) AS v", "UNSUPPORTED", "VD2000"],
    ["a no-break space (an identifier character to SQLite)", "SELECT a\u00a0b FROM t", "UNSUPPORTED", "VD2000"],
    ["`1e`, an identifier to the parser, illegal to SQLite", "SELECT 1e", "SYNTAX_ERROR", undefined],
    ["`0x1g`", "SELECT 0x1g", "SYNTAX_ERROR", undefined],
    ["an odd-length blob", "SELECT x'0'", "SYNTAX_ERROR", undefined],
  ])("%s", (_what, sql, code, id) => {
    expect(refusal(sql)).toEqual(id === undefined ? { code, id: undefined } : { code, id });
  });

  it("reads plain statements the same: comments, quoting and every placeholder style pass", () => {
    for (const sql of [
      "SELECT -5 AS x, 'a''b' /* c */ , x'00', \"q\"\"r\", [s t], `u` FROM t -- end",
      "SELECT ?1, :a, @b, $c, ? FROM t WHERE a = 1 /* ; */ AND b = '--'",
      "CREATE TABLE t2 (id INTEGER PRIMARY KEY, n VARCHAR(10) NOT NULL DEFAULT 'x', b BLOB DEFAULT x'00')",
      "SELECT CAST(1 AS UNSIGNED BIG INT), count(*), t.* FROM t;",
    ]) {
      expect(refusal(sql), sql).toEqual({ code: "OK" });
    }
  });

  it("nesting past the limits is a catalogued refusal, never a stack overflow", () => {
    expect(refusal(`SELECT ${"(".repeat(500)}1${")".repeat(500)}`)).toEqual({ code: "UNSUPPORTED", id: "VD2001" });
    expect(refusal(`SELECT ${Array(20_000).fill("1").join("+")}`)).toEqual({ code: "UNSUPPORTED", id: "VD2002" });
    const r = refusal(`SELECT ${"CASE WHEN 1 THEN ".repeat(2000)}1${" END".repeat(2000)}`);
    expect(r.code).toBe("UNSUPPORTED");
    expect(["VD2002", "VD2003"]).toContain(r.id);
  });
});

describe("inlined literals read back exactly and never join the text around them", () => {
  const db = new DatabaseSync(":memory:");
  const get = (sql: string, ...params: (SqlValue | bigint)[]): unknown[] => {
    const st = db.prepare(sql);
    st.setReadBigInts(true);
    st.setReturnArrays(true);
    return st.get(...(params as never[])) as unknown as unknown[];
  };
  const cases: [string, SqlValue][] = [
    ["a negative integer", -5],
    ["-0", -0],
    ["the smallest int64", -(2n ** 63n)],
    ["the largest int64", 2n ** 63n - 1n],
    ["text with quotes, newlines and a comment opener", "it's\n; DELETE --"],
    ["text holding NUL", "a\u0000b"],
    ["text naming a system table", "_vt_binlog"],
    ["an empty blob", new Uint8Array()],
    ["a blob", new Uint8Array([0, 255, 39])],
    ["NULL", null],
  ];
  it.each(cases)("%s: `1-` + literal, and typeof and value as a bound value gives", (_what, v) => {
    const lit = inlineLiteral(v);
    checkShardSql(`SELECT 1-${lit}, typeof(${lit}), ${lit}, quote(${lit})`, 0);
    const bound = typeof v === "number" ? BigInt(v) : v;
    expect(get(`SELECT typeof(${lit}), quote(${lit}), length(${lit})`)).toEqual(get("SELECT typeof(?1), quote(?1), length(?1)", bound));
    expect(get(`SELECT (1-${lit}) IS (1 - ?1)`, bound)).toEqual([1n]);
  });
});
