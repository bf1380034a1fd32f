// Lookups by user-given names (keyspaces, tables, vindexes, vschema entries, CTEs) in plain
// records. A record built with `{}`, parsed from JSON or cloned across RPC inherits
// Object.prototype, so `rec["constructor"]` is a function and `rec["__proto__"] = v` replaces
// the prototype: every such lookup and write goes through these two instead.

/** The record's own entry for `key`, never an inherited one. */
export function own<T>(rec: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

/** Sets an own entry (also for `__proto__`, which assignment would take as the prototype). */
export function setOwn<T>(rec: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(rec, key, { value, writable: true, enumerable: true, configurable: true });
}
