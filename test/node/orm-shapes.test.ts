// Statements as ORMs write them (Drizzle qualifies every column it groups or orders by, quotes
// every name) must plan like their plain spellings: the planner matches expressions by the
// column they resolve to, never by text. And a reference table whose DEFAULT differs per call
// takes every INSERT that gives that column a value.

import { afterEach, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

function blog(): Cluster {
  c = createCluster({
    shards: 3,
    tables: {
      posts: { create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT)", column: "id" },
      comments: { create: "CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER, author_id INTEGER, body TEXT)", column: "id" },
      authors: { create: "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT)", column: "id" },
    },
  });
  const rows = [
    `INSERT INTO posts VALUES ${Array.from({ length: 30 }, (_, i) => `(${i + 1}, ${(i % 4) + 1}, 'p${i}')`).join(", ")}`,
    `INSERT INTO comments VALUES ${Array.from({ length: 40 }, (_, i) => `(${i + 1}, ${(i % 30) + 1}, ${(i % 5) + 1}, 'c${i}')`).join(", ")}`,
    "INSERT INTO authors VALUES (1, 'ada'), (2, 'lin'), (3, 'bo'), (4, 'cy'), (5, 'di')",
  ];
  for (const r of rows) {
    c.reference(r);
  }
  return c;
}

async function load(cl: Cluster): Promise<void> {
  for (const t of ["posts", "comments", "authors"]) {
    const all = cl.reference(`SELECT * FROM ${t}`).rows;
    for (const row of all) await cl.run(`INSERT INTO ${t} VALUES (${row.map(() => "?").join(", ")})`, row);
  }
}

async function same(cl: Cluster, sql: string, ordered = true): Promise<void> {
  const got = (await cl.run(sql)).rows;
  const want = cl.reference(sql).rows;
  if (ordered) expect(show(got), sql).toBe(show(want));
  else expect(show([...got].sort()), sql).toBe(show([...want].sort()));
}

describe("one column, any spelling", () => {
  it("GROUP BY a qualified column while selecting it unqualified (Drizzle's groupBy)", async () => {
    const cl = blog();
    await load(cl);
    await same(cl, 'select "author_id", count(*) from "posts" group by "posts"."author_id" order by "posts"."author_id"');
    await same(cl, 'select "posts"."author_id", count(*) from "posts" group by "author_id" order by 1');
    await same(cl, "select author_id, count(*) from posts group by main.posts.author_id order by main.posts.author_id");
    await same(cl, "select AUTHOR_ID, sum(id) from posts group by (author_id) order by Author_Id");
    await same(cl, "select p.author_id, max(p.id) from posts p group by author_id having p.author_id > 1 order by author_id");
  });

  it("SELECT DISTINCT ordered by the qualified spelling of a selected column", async () => {
    const cl = blog();
    await load(cl);
    await same(cl, 'select distinct "author_id" from "comments" order by "comments"."author_id"');
    await same(cl, 'select distinct "comments"."author_id" from "comments" order by "author_id" desc');
    await same(cl, "select distinct author_id from comments order by main.comments.author_id");
  });

  it("HAVING and ORDER BY name the grouped column and aggregates in another spelling", async () => {
    const cl = blog();
    await load(cl);
    await same(
      cl,
      'select "author_id", count("posts"."id") from "posts" group by "posts"."author_id" having count("id") > 7 order by count(posts.id), "author_id"',
    );
  });

  it("a gate join groups and orders by a column spelled differently in the select list", async () => {
    const cl = blog();
    await load(cl);
    await same(
      cl,
      'select "comments"."post_id", count(*) from "comments" join "posts" on "posts"."id" = "comments"."post_id" group by "post_id" order by "comments"."post_id"',
    );
    await same(
      cl,
      'select "posts"."author_id", count("comments"."id") from "posts" join "comments" on "comments"."post_id" = "posts"."id" group by "posts"."author_id" having count("comments"."id") > 5 order by count(comments.id), "posts"."author_id"',
    );
  });

  it("WHERE main.posts.id = ? routes to the one shard of that id, like posts.id = ?", async () => {
    const cl = blog();
    await load(cl);
    await same(cl, "SELECT title FROM posts WHERE main.posts.id = 7");
    expect(cl.lastTouched).toEqual([cl.shardOf(7)]);
  });

  it("different columns are never matched: a column of another table or another column stays refused", async () => {
    const cl = blog();
    await load(cl);
    await expect(cl.run("select title, count(*) from posts group by author_id")).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD1021" });
    await expect(cl.run("select distinct author_id from comments order by post_id")).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD1013" });
    await expect(cl.run("select author_id, count(*) from posts group by 'author_id'")).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD1021" });
  });
});

describe("reference tables with a per-call DEFAULT", () => {
  function stamped(): Cluster {
    c = createCluster({
      shards: 3,
      tables: {
        events: {
          create: "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, created_at INTEGER NOT NULL DEFAULT (unixepoch()), note TEXT DEFAULT 'x')",
          reference: true,
        },
        src: { create: "CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT)", column: "id" },
      },
    });
    return c;
  }

  it("an INSERT giving every per-call DEFAULT column a value reaches every copy", async () => {
    const cl = stamped();
    await cl.run("INSERT INTO events (id, name, created_at) VALUES (1, 'a', 1700000000), (2, 'b', ?)", [1700000001]);
    await cl.run("INSERT INTO events VALUES (3, 'c', 1700000002, 'y')");
    await cl.run("INSERT OR REPLACE INTO events (created_at, name, id) VALUES (1700000003, 'from src', 10)");
    const want = show([
      [1, "a", 1700000000, "x"],
      [2, "b", 1700000001, "x"],
      [3, "c", 1700000002, "y"],
      [10, "from src", 1700000003, "x"],
    ]);
    for (const s of cl.shardNames) expect(show(cl.onShard(s, "SELECT * FROM events ORDER BY id").rows)).toBe(want);
  });

  it("an INSERT leaving a per-call DEFAULT column out is refused and changes no copy", async () => {
    const cl = stamped();
    for (const sql of [
      "INSERT INTO events (id, name) VALUES (1, 'a')",
      "INSERT INTO events DEFAULT VALUES",
      "INSERT INTO events (id, name) SELECT id, name FROM src",
    ]) {
      await expect(cl.run(sql), sql).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD1040" });
    }
    for (const s of cl.shardNames) expect(show(cl.onShard(s, "SELECT count(*) FROM events").rows)).toBe(show([[0]]));
  });
});
