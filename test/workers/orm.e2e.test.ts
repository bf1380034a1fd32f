// Real application code, unchanged, against the real gate and tablets: Kysely (its own SQLite
// introspector over a small SDK dialect) and Drizzle (sqlite-proxy over the SDK). Introspection
// sees exactly the keyspace's schema; Drizzle's groupBy / selectDistinct / reference-table
// inserts answer as on one SQLite.

import { exports } from "cloudflare:workers";
import { count, sql as dsql, asc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client } from "../../client/index.ts";
import { api, sql, sqlError } from "./helpers.ts";
import { drizzleProxy, sdkDialect } from "./orm-dialects.ts";

const gateFetch = ((input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(input, init))) as typeof fetch;

const KS = "orm";
const SCHEMA = [
  "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
  "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, title TEXT DEFAULT 'untitled')",
  "CREATE INDEX posts_author ON posts (author_id)",
  "CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER, author_id INTEGER, body TEXT)",
  "CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT, created_at INTEGER NOT NULL DEFAULT (unixepoch()))",
];

let db: Client;
beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: KS, shards: 2 })).status).toBe(200);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: {
      authors: { column_vindexes: [{ column: "id", name: "xx" }] },
      posts: { column_vindexes: [{ column: "id", name: "xx" }] },
      comments: { column_vindexes: [{ column: "id", name: "xx" }] },
      countries: { type: "reference" },
    },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: KS, vschema })).status).toBe(200);
  for (const ddl of SCHEMA) await sql(ddl, undefined, KS);
  db = createClient({ url: "http://gate", fetch: gateFetch, keyspace: KS });
});
afterAll(async () => {
  await db.close();
});

describe("Kysely", () => {
  it("db.introspection.getTables() lists exactly the keyspace's tables with their columns", async () => {
    const k = new Kysely<unknown>({ dialect: sdkDialect(db) });
    const tables = await k.introspection.getTables();
    expect(tables.map((t) => t.name)).toEqual(["authors", "comments", "countries", "posts"]);
    const posts = tables.find((t) => t.name === "posts");
    expect(posts?.columns.map((c) => [c.name, c.dataType, c.isNullable, c.isAutoIncrementing, c.hasDefaultValue])).toEqual([
      ["id", "INTEGER", true, true, false],
      ["author_id", "INTEGER", false, false, false],
      ["title", "TEXT", true, false, true],
    ]);
    expect(tables.find((t) => t.name === "countries")?.columns.map((c) => c.name)).toEqual(["code", "name", "created_at"]);
  });

  it("a schema change shows up in the next introspection", async () => {
    await sql("ALTER TABLE comments ADD COLUMN score REAL", undefined, KS);
    const k = new Kysely<unknown>({ dialect: sdkDialect(db) });
    const comments = (await k.introspection.getTables()).find((t) => t.name === "comments");
    expect(comments?.columns.map((c) => c.name)).toEqual(["id", "post_id", "author_id", "body", "score"]);
  });
});

describe("introspection through the gate", () => {
  it("sqlite_master shows the keyspace's objects and no system object", async () => {
    const rs = await sql("SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name", undefined, KS);
    expect(rs.columns).toEqual(["type", "name", "tbl_name"]);
    expect(rs.rows).toEqual([
      ["index", "posts_author", "posts"],
      ["index", "sqlite_autoindex_countries_1", "countries"],
      ["table", "authors", "authors"],
      ["table", "comments", "comments"],
      ["table", "countries", "countries"],
      ["table", "posts", "posts"],
    ]);
    const schema = await sql("SELECT sql FROM sqlite_schema WHERE name = 'posts'", undefined, KS);
    expect(schema.rows).toEqual([["CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, title TEXT DEFAULT 'untitled')"]]);
  });

  it("PRAGMA statements and table functions read the schema", async () => {
    // Every spelling of the argument SQLite takes works too (sqlite-spellings.test.ts).
    const info = await sql("PRAGMA table_info('authors')", undefined, KS);
    expect(info.columns).toEqual(["cid", "name", "type", "notnull", "dflt_value", "pk"]);
    expect(info.rows).toEqual([
      [0, "id", "INTEGER", 0, null, 1],
      [1, "name", "TEXT", 1, null, 0],
    ]);
    expect((await sql("SELECT name FROM pragma_index_list('posts')", undefined, KS)).rows).toEqual([["posts_author"]]);
    expect((await sql("SELECT name FROM pragma_index_info(?)", ["posts_author"], KS)).rows).toEqual([["author_id"]]);
    expect((await sql("SELECT count(*) FROM pragma_foreign_key_list('posts')", undefined, KS)).rows).toEqual([[0]]);
    expect((await sql("SELECT name, hidden FROM pragma_table_xinfo('authors')", undefined, KS)).rows).toEqual([
      ["id", 0],
      ["name", 0],
    ]);
  });

  it("system objects stay invisible and unnamable", async () => {
    // A UNIQUE column other than the vindex gets a system lookup table (_vtl_…): never shown.
    await sql("CREATE TABLE members (id INTEGER PRIMARY KEY, email TEXT UNIQUE)", undefined, KS);
    const names = (await sql("SELECT name FROM sqlite_master WHERE tbl_name = 'members' OR name LIKE '%members%' ORDER BY name", undefined, KS)).rows;
    expect(names).toEqual([["members"], ["sqlite_autoindex_members_1"]]);
    expect((await sql("SELECT count(*) FROM pragma_table_list WHERE name LIKE '%vt%'", undefined, KS)).rows).toEqual([[0]]);
    expect((await sqlError("SELECT * FROM pragma_table_info('_vt_binlog')", undefined, KS)).code).toBe("PERMISSION_DENIED");
    expect((await sql("SELECT * FROM pragma_table_info('nothere')", undefined, KS)).rows).toEqual([]);
    expect((await sql("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_%' ESCAPE '\\'", undefined, KS)).rows).toEqual([[0]]);
    expect((await sqlError("PRAGMA table_info('_vt_binlog')", undefined, KS)).code).toBe("PERMISSION_DENIED");
    expect((await sqlError("SELECT * FROM sqlite_master WHERE name = _vt_meta", undefined, KS)).code).toBe("PERMISSION_DENIED");
  });

  it("a statement mixing the catalog with tables, and PRAGMAs that set or read state, are refused", async () => {
    const mixed = await sqlError("SELECT p.id FROM posts p JOIN sqlite_master m ON m.name = 'posts'", undefined, KS);
    expect([mixed.code, mixed["id"]]).toEqual(["UNSUPPORTED", "VD2500"]);
    const sub = await sqlError("SELECT name FROM sqlite_master WHERE (SELECT count(*) FROM posts) > 0", undefined, KS);
    expect([sub.code, sub["id"]]).toEqual(["UNSUPPORTED", "VD2500"]);
    const set = await sqlError("PRAGMA foreign_keys = 1", undefined, KS);
    expect([set.code, set["id"]]).toEqual(["UNSUPPORTED", "VD1084"]);
    const seq = await sqlError("SELECT * FROM sqlite_sequence", undefined, KS);
    expect([seq.code, seq["id"]]).toEqual(["UNSUPPORTED", "VD1082"]);
  });

  it("an unsharded keyspace's catalog shows its views and triggers too", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "orm1", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "orm1");
    await sql("CREATE VIEW tv AS SELECT id FROM t", undefined, "orm1");
    await sql("CREATE TRIGGER tt AFTER INSERT ON t BEGIN SELECT 1; END", undefined, "orm1");
    const rs = await sql("SELECT type, name FROM sqlite_master ORDER BY name", undefined, "orm1");
    expect(rs.rows).toEqual([
      ["table", "t"],
      ["trigger", "tt"],
      ["view", "tv"],
    ]);
  });
});

const authors = sqliteTable("authors", { id: integer("id").primaryKey(), name: text("name").notNull() });
const posts = sqliteTable("posts", { id: integer("id").primaryKey(), authorId: integer("author_id").notNull(), title: text("title") });
const comments = sqliteTable("comments", { id: integer("id").primaryKey(), postId: integer("post_id"), authorId: integer("author_id"), body: text("body") });
const countries = sqliteTable("countries", {
  code: text("code").primaryKey(),
  name: text("name"),
  createdAt: integer("created_at").notNull().default(dsql`(unixepoch())`),
});

describe("Drizzle (sqlite-proxy)", () => {
  it("inserts, groupBy, selectDistinct ordered by a qualified column, and joins answer as one SQLite", async () => {
    const d = drizzle(drizzleProxy(db));
    await d.insert(authors).values([
      { id: 1, name: "ada" },
      { id: 2, name: "lin" },
      { id: 3, name: "bo" },
    ]);
    await d.insert(posts).values(Array.from({ length: 12 }, (_, i) => ({ id: i + 1, authorId: (i % 3) + 1, title: `p${i}` })));
    await d.insert(comments).values(Array.from({ length: 20 }, (_, i) => ({ id: i + 1, postId: (i % 12) + 1, authorId: (i % 2) + 1, body: `c${i}` })));
    const byAuthor = await d.select({ authorId: posts.authorId, n: count() }).from(posts).groupBy(posts.authorId).orderBy(posts.authorId);
    expect(byAuthor).toEqual([
      { authorId: 1, n: 4 },
      { authorId: 2, n: 4 },
      { authorId: 3, n: 4 },
    ]);
    const distinct = await d.selectDistinct({ authorId: comments.authorId }).from(comments).orderBy(comments.authorId);
    expect(distinct).toEqual([{ authorId: 1 }, { authorId: 2 }]);
    const joined = await d
      .select({ name: authors.name, n: count(posts.id) })
      .from(posts)
      .innerJoin(authors, dsql`${authors.id} = ${posts.authorId}`)
      .groupBy(authors.name)
      .orderBy(asc(authors.name));
    expect(joined).toEqual([
      { name: "ada", n: 4 },
      { name: "bo", n: 4 },
      { name: "lin", n: 4 },
    ]);
    const one = await d.select().from(posts).where(dsql`${posts.id} = 5`).get();
    expect(one).toEqual({ id: 5, authorId: 2, title: "p4" });
  });

  it("a reference table with DEFAULT (unixepoch()) takes an insert that gives the value", async () => {
    const d = drizzle(drizzleProxy(db));
    await d.insert(countries).values({ code: "fr", name: "France", createdAt: 1700000000 });
    expect(await d.select().from(countries)).toEqual([{ code: "fr", name: "France", createdAt: 1700000000 }]);
    // Left to its DEFAULT, Drizzle writes (unixepoch()) into VALUES: each copy would differ.
    const leftOut = d.insert(countries).values({ code: "de", name: "Germany" });
    await expect(leftOut).rejects.toMatchObject({ cause: { code: "UNSUPPORTED" } });
    const q = leftOut.toSQL();
    const e = await sqlError(q.sql, q.params, KS);
    expect([e.code, e["id"]]).toEqual(["UNSUPPORTED", "VD1042"]);
  });
});
