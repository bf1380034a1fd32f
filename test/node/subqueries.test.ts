import { expect, it } from "vitest";
import { createCluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

// Uncorrelated subqueries over shards run first and are bound into the outer statement:
// the answers (and the writes) equal one SQLite's. Correlated ones are refused.
it("IN, EXISTS and scalar subqueries over shards answer what one SQLite answers", async () => {
  const c = createCluster({
    shards: 3,
    tables: {
      users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, vip INTEGER)", column: "id" },
      orders: { create: "CREATE TABLE orders (oid INTEGER PRIMARY KEY, user_id INTEGER, total REAL)", column: "oid" },
    },
  });
  for (const ins of [
    "INSERT INTO users VALUES (1, 'ada', 1), (2, 'bob', 0), (3, 'cy', 1), (4, 'di', 0), (5, 'ed', NULL)",
    "INSERT INTO orders VALUES (10, 1, 5.5), (11, 1, 2), (12, 3, 9), (13, 4, 1), (14, 9, 3)",
  ]) {
    c.reference(ins);
    await c.run(ins);
  }
  for (const q of [
    "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 1.5) ORDER BY name",
    "SELECT name FROM users WHERE id NOT IN (SELECT user_id FROM orders) ORDER BY id",
    "SELECT count(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 100)",
    "SELECT count(*) FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE total > 100)",
    "SELECT name FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE total > 8) AND vip = 1 ORDER BY id",
    "SELECT name FROM users WHERE NOT EXISTS (SELECT 1 FROM orders WHERE total > 8) ORDER BY id",
    "SELECT name, (SELECT max(total) FROM orders) AS top FROM users WHERE id = 2",
    "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM users)",
    "SELECT id, (SELECT count(*) FROM orders) AS n FROM users ORDER BY id",
    "SELECT id FROM users WHERE id = (SELECT min(user_id) FROM orders) ",
    "SELECT vip, count(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE oid IN (SELECT oid FROM orders WHERE total < 6)) GROUP BY vip ORDER BY 1",
  ]) {
    expect(show((await c.run(q)).rows), q).toBe(show(c.reference(q).rows));
  }
  for (const w of [
    "UPDATE users SET vip = 2 WHERE id IN (SELECT user_id FROM orders WHERE total >= 2)",
    "DELETE FROM orders WHERE user_id NOT IN (SELECT id FROM users)",
  ]) {
    const a = await c.run(w);
    const r = c.reference(w);
    expect(a.rowsAffected, w).toBe(r.rowsAffected);
  }
  for (const q of ["SELECT * FROM users ORDER BY id", "SELECT * FROM orders ORDER BY oid"]) expect(show((await c.run(q)).rows)).toBe(show(c.reference(q).rows));
  for (const q of [
    "SELECT name FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE orders.user_id = users.id)",
    "SELECT name FROM users u WHERE (SELECT count(*) FROM orders WHERE user_id = u.id) > 1",
    "SELECT name FROM users WHERE id IN (SELECT user_id, total FROM orders)",
    "SELECT * FROM (SELECT * FROM users)",
  ]) {
    await expect(c.run(q), q).rejects.toMatchObject({ code: "UNSUPPORTED" });
  }
});
