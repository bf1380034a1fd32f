// A vschema can never point the gate at the system's own tables: a table entry, a sequence, a
// lookup vindex's table or columns, an owner or a vindex column named like a system object is
// INVALID_ARGUMENT when the vschema is applied, before any statement could read or write it.

import { describe, expect, it } from "vitest";
import { validateVSchema } from "../../topology/vschema.ts";

function refusal(input: unknown): { code: unknown } | undefined {
  try {
    validateVSchema(input);
    return undefined;
  } catch (e) {
    return { code: (e as { code?: unknown }).code };
  }
}

const lookup = (table: string, from = "v", to = "ksid", owner = "t") => ({
  sharded: true,
  vindexes: { xx: { type: "xxhash" }, lk: { type: "lookup_unique", params: { table, from, to }, owner } },
  tables: {
    t: {
      column_vindexes: [
        { column: "id", name: "xx" },
        { column: "v", name: "lk" },
      ],
    },
  },
});

describe("vschema names of system objects are refused", () => {
  it("a lookup vindex whose table is a system table (any _vt prefix, sqlite_, _cf_, keyspace-qualified) is INVALID_ARGUMENT", () => {
    for (const table of ["_vt_binlog", "_VT_META", "_vtl_t__v", "_vtg_x", "other._vt_binlog", "sqlite_master", "_cf_KV", "pragma_table_info", "dbstat"]) {
      expect({ table, ...refusal(lookup(table)) }).toEqual({ table, code: "INVALID_ARGUMENT" });
    }
    expect(refusal(lookup("t_lookup"))).toBeUndefined();
    expect(refusal(lookup("other.t_lookup"))).toBeUndefined();
  });

  it("lookup columns and owners named like system objects are INVALID_ARGUMENT", () => {
    expect(refusal(lookup("t_lookup", "_vt_from"))).toEqual({ code: "INVALID_ARGUMENT" });
    expect(refusal(lookup("t_lookup", "v", "_vt_to"))).toEqual({ code: "INVALID_ARGUMENT" });
    expect(refusal(lookup("t_lookup", "v", "ksid", "_vt_meta"))).toEqual({ code: "INVALID_ARGUMENT" });
  });

  it("a table entry (reference or sequence) named like a system object is INVALID_ARGUMENT", () => {
    for (const name of ["_vt_binlog", "_vtl_t__v", "sqlite_sequence", "_cf_METADATA"]) {
      expect({ name, ...refusal({ sharded: true, tables: { [name]: { type: "reference" } } }) }).toEqual({ name, code: "INVALID_ARGUMENT" });
      expect({ name, ...refusal({ sharded: false, tables: { [name]: { type: "sequence" } } }) }).toEqual({ name, code: "INVALID_ARGUMENT" });
    }
  });

  it("an auto_increment sequence or column, or a vindex column, naming a system object is INVALID_ARGUMENT", () => {
    const table = (t: Record<string, unknown>) => ({ sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { t } });
    for (const sequence of ["_vt_binlog", "seqks._vt_meta", "sqlite_sequence"]) {
      expect(refusal(table({ column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "id", sequence } }))).toEqual({
        code: "INVALID_ARGUMENT",
      });
    }
    expect(refusal(table({ column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "_vt_id", sequence: "seq" } }))).toEqual({
      code: "INVALID_ARGUMENT",
    });
    expect(refusal(table({ column_vindexes: [{ column: "_vt_id", name: "xx" }] }))).toEqual({ code: "INVALID_ARGUMENT" });
    expect(refusal(table({ column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "id", sequence: "seqks.seq" } }))).toBeUndefined();
  });
});
