import { VtError } from "../../contract/errors.ts";
import type { Bindings } from "../sql/template.ts";
import { evalValue, type ValueExpr } from "./values.ts";

/** A LIMIT or OFFSET value as SQLite reads it: an integer (negative LIMIT = no limit). */
export function limitNumber(v: ValueExpr, b: Bindings, what: string): number {
  const x = evalValue(v, b);
  if (typeof x === "bigint") return x < 0n ? -1 : Number.MAX_SAFE_INTEGER;
  if (typeof x === "number" && Number.isInteger(x)) return x;
  if (typeof x === "string" && /^\s*[+-]?\d+\s*$/.test(x)) return Number(x);
  throw new VtError("INVALID_ARGUMENT", `${what} must be an integer`);
}
