// vtctl as users run it: `node cli/vtctl.mjs ...` in a child process, against a node:http
// server that fakes the gate's HTTP endpoints and records what it received.

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

const VTCTL = join(dirname(fileURLToPath(import.meta.url)), "vtctl.mjs");

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

interface Reply {
  status?: number;
  body: unknown;
}

const TOPOLOGY = {
  version: 7,
  keyspaces: [
    {
      name: "main",
      sharded: true,
      shards: [
        { name: "-80", keyRange: "-80", serving: true, rowCount: 1200, bytes: 65536 },
        { name: "80-", keyRange: "80-", serving: false, rowCount: 3, bytes: 4096 },
      ],
      tables: ["users", "orders"],
      vschema: { sharded: true },
    },
  ],
  workflows: [],
};

let server: Server;
let base = "";
let received: Received[] = [];
/** What the fake answers, by "METHOD /path" (query string dropped). */
let replies: Record<string, Reply | ((body: unknown) => Reply)> = {};
let tmp = "";

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "vtctl-test-"));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const body: unknown = text === "" ? undefined : JSON.parse(text);
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const route = `${req.method ?? ""} ${(req.url ?? "").split("?")[0] ?? ""}`;
      const entry = replies[route];
      const reply: Reply =
        entry === undefined
          ? { status: 404, body: { error: { code: "INVALID_ARGUMENT", message: `no route ${route}`, retryable: false } } }
          : typeof entry === "function"
            ? entry(body)
            : entry;
      res.writeHead(reply.status ?? 200, { "content-type": "application/json" });
      res.end(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  received = [];
  replies = {};
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs vtctl with VTCTL_SERVER pointing at the fake unless `env` says otherwise. */
function vtctl(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VTCTL, ...args], {
      env: { PATH: process.env["PATH"], VTCTL_SERVER: base, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("help and argument errors", () => {
  it("--help lists every command", async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await vtctl(["sql", flag]);
      expect(r.code).toBe(0);
      for (const cmd of [
        "sql",
        "topology",
        "keyspace create",
        "keyspace retention",
        "vschema apply",
        "vschema show",
        "reshard",
        "movetables",
        "vdiff",
        "vstream",
        "subscription create",
        "subscription update",
        "subscription show",
        "subscription delete",
      ]) {
        expect(r.stdout).toContain(cmd);
      }
    }
    expect(received).toHaveLength(0);
  });

  it("no command, an unknown command or flag exit 1 with INVALID_ARGUMENT", async () => {
    for (const args of [[], ["frobnicate"], ["topology", "--bogus"], ["sql", "SELECT 1", "--file", "x"], ["sql"], ["sql", "SELECT", "*"]]) {
      const r = await vtctl(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: /);
      expect(r.stdout).toBe("");
    }
    expect(received).toHaveLength(0);
  });

  it("vstream refuses a positional argument and a bad --limit before connecting", async () => {
    for (const args of [
      ["vstream", "create"],
      ["vstream", "--limit", "0"],
      ["vstream", "--limit", "x"],
    ]) {
      const r = await vtctl(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: /);
    }
  });
});

describe("sql", () => {
  const ROWS = {
    columns: ["id", "name", "big", "blob", "note"],
    rows: [
      [1, "ada", { int: "9007199254740993" }, { base64: "AAH+/w==" }, null],
      [20, "grace", 5, { base64: "" }, "line1\nline2"],
    ],
    rowsAffected: 0,
  };

  it("prints a table with decoded values and a row count", async () => {
    replies["POST /v1/sql"] = { body: ROWS };
    const r = await vtctl(["sql", "SELECT * FROM users", "--keyspace", "main"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(received[0]?.body).toEqual({ sql: "SELECT * FROM users", keyspace: "main" });
    expect(r.stdout).toBe(
      [
        "+----+-------+------------------+-------------+--------------+",
        "| id | name  | big              | blob        | note         |",
        "+----+-------+------------------+-------------+--------------+",
        "|  1 | ada   | 9007199254740993 | x'0001feff' | NULL         |",
        "| 20 | grace |                5 | x''         | line1\\nline2 |",
        "+----+-------+------------------+-------------+--------------+",
        "2 rows",
        "",
      ].join("\n"),
    );
  });

  it("prints rowsAffected and lastInsertRowid for a write", async () => {
    replies["POST /v1/sql"] = { body: { columns: [], rows: [], rowsAffected: 1, lastInsertRowid: { int: "4611686018427387904" } } };
    const r = await vtctl(["sql", "INSERT INTO users (id) VALUES (?)", "--params", '[{"int": "4611686018427387904"}]']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("rowsAffected: 1, lastInsertRowid: 4611686018427387904\n");
    expect(received[0]?.body).toEqual({ sql: "INSERT INTO users (id) VALUES (?)", params: [{ int: "4611686018427387904" }] });
  });

  it("--json prints the server's JSON, and flags may come first", async () => {
    replies["POST /v1/sql"] = { body: ROWS };
    const r = await vtctl(["--json", "--keyspace=main", "sql", "SELECT * FROM users", "--params", '{"id": 1}']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(ROWS);
    expect(received[0]?.body).toEqual({ sql: "SELECT * FROM users", keyspace: "main", params: { id: 1 } });
  });

  it("rejects --params that are not a JSON array or object before sending", async () => {
    for (const params of ["[1,", "42", "null"]) {
      const r = await vtctl(["sql", "SELECT ?", "--params", params]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: --params/);
    }
    expect(received).toHaveLength(0);
  });

  it("a server error exits 1 with CODE: message, position and a caret", async () => {
    replies["POST /v1/sql"] = {
      status: 400,
      body: { error: { code: "SYNTAX_ERROR", message: 'near "FORM": syntax error', retryable: false, position: 9 } },
    };
    const r = await vtctl(["sql", "SELECT * FORM users"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe('SYNTAX_ERROR: near "FORM": syntax error (position 9)\n  SELECT * FORM users\n           ^\n');
  });

  it("a non-JSON error answer names the status", async () => {
    replies["POST /v1/sql"] = { status: 502, body: "<html>bad gateway</html>" };
    const r = await vtctl(["sql", "SELECT 1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^INTERNAL: POST .*\/v1\/sql answered 502 Bad Gateway: <html>bad gateway<\/html>/);
  });
});

describe("auth and server", () => {
  it("sends --token, or VTCTL_TOKEN, as a bearer token", async () => {
    replies["GET /v1/topology"] = { body: TOPOLOGY };
    expect((await vtctl(["topology", "--token", "t0k"])).code).toBe(0);
    expect((await vtctl(["topology"], { VTCTL_TOKEN: "from-env" })).code).toBe(0);
    expect((await vtctl(["topology", "--token=flag-wins"], { VTCTL_TOKEN: "from-env" })).code).toBe(0);
    expect((await vtctl(["topology"])).code).toBe(0);
    expect(received.map((r) => r.headers.authorization)).toEqual(["Bearer t0k", "Bearer from-env", "Bearer flag-wins", undefined]);
  });

  it("UNAUTHENTICATED from the server is reported with its code", async () => {
    replies["GET /v1/topology"] = {
      status: 401,
      body: { error: { code: "UNAUTHENTICATED", message: "missing or wrong bearer token", retryable: false } },
    };
    const r = await vtctl(["topology"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("UNAUTHENTICATED: missing or wrong bearer token\n");
  });

  it("--server overrides VTCTL_SERVER; an unreachable server is named", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await vtctl(["topology", "--server", dead]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`INTERNAL: cannot reach the server at ${dead}`);
    expect(r.stderr).toContain("ECONNREFUSED");
    expect(received).toHaveLength(0);

    const bad = await vtctl(["topology", "--server", "not a url"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^INVALID_ARGUMENT: --server/);
  });
});

describe("topology", () => {
  it("prints keyspaces and shards with keyRange, serving, rowCount, bytes", async () => {
    replies["GET /v1/topology"] = { body: TOPOLOGY };
    const r = await vtctl(["topology"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "serving graph version 7",
        "+----------+---------+-------+----------+---------+----------+-------+",
        "| keyspace | sharded | shard | keyRange | serving | rowCount | bytes |",
        "+----------+---------+-------+----------+---------+----------+-------+",
        "| main     | yes     | -80   | -80      | yes     |     1200 | 65536 |",
        "| main     | yes     | 80-   | 80-      | no      |        3 |  4096 |",
        "+----------+---------+-------+----------+---------+----------+-------+",
        "main tables: users, orders",
        "workflows: none",
        "",
      ].join("\n"),
    );
  });

  it("--json prints the topology JSON", async () => {
    replies["GET /v1/topology"] = { body: TOPOLOGY };
    const r = await vtctl(["topology", "--json"]);
    expect(JSON.parse(r.stdout)).toEqual(TOPOLOGY);
  });
});

describe("keyspace create", () => {
  const created = (body: unknown): Reply => {
    const { name, shards } = body as { name: string; shards: number | string[] };
    const names = typeof shards === "number" ? ["-40", "40-80", "80-c0", "c0-"].slice(0, shards) : shards;
    const ks = { name, sharded: true, shards: names.map((n) => ({ name: n, keyRange: n, serving: true, rowCount: 0, bytes: 0 })), tables: [], vschema: {} };
    return { body: { ...TOPOLOGY, keyspaces: [...TOPOLOGY.keyspaces, ks] } };
  };

  it("takes a shard count", async () => {
    replies["POST /v1/keyspaces"] = created;
    const r = await vtctl(["keyspace", "create", "orders", "--shards", "4"]);
    expect(r.code).toBe(0);
    expect(received[0]?.body).toEqual({ name: "orders", shards: 4 });
    expect(r.stdout).toBe("created keyspace orders with shards -40, 40-80, 80-c0, c0-\n");
  });

  it("takes a list of key ranges, even starting with a dash", async () => {
    replies["POST /v1/keyspaces"] = created;
    expect((await vtctl(["keyspace", "create", "a", "--shards", "-80,80-"])).code).toBe(0);
    expect((await vtctl(["keyspace", "create", "b", "--shards=-40,40-"])).code).toBe(0);
    const r = await vtctl(["keyspace", "create", "c", "--shards", "-"]);
    expect(r.code).toBe(0);
    expect(received.map((x) => x.body)).toEqual([
      { name: "a", shards: ["-80", "80-"] },
      { name: "b", shards: ["-40", "40-"] },
      { name: "c", shards: ["-"] },
    ]);
  });

  it("rejects a missing or malformed --shards, and passes server errors through", async () => {
    for (const args of [
      ["keyspace", "create", "x"],
      ["keyspace", "create", "x", "--shards", "-80,zz"],
      ["keyspace", "create", "--shards", "2"],
      ["keyspace", "drop", "x"],
    ]) {
      const r = await vtctl(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: /);
    }
    expect(received).toHaveLength(0);
    replies["POST /v1/keyspaces"] = {
      status: 403,
      body: { error: { code: "PERMISSION_DENIED", message: "creating a keyspace needs the admin token", retryable: false } },
    };
    const r = await vtctl(["keyspace", "create", "x", "--shards", "2"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("PERMISSION_DENIED: creating a keyspace needs the admin token\n");
  });
});

describe("keyspace retention", () => {
  const shown = { keyspace: "main", retentionSeconds: 604_800, retentionBytes: 1024 ** 3, holdSeconds: 604_800, isDefault: true };

  it("without flags shows the setting; --json prints the server's answer", async () => {
    replies["GET /v1/retention"] = { body: shown };
    const r = await vtctl(["keyspace", "retention", "main"]);
    expect(r.code, r.stderr).toBe(0);
    expect(received[0]?.method).toBe("GET");
    expect(received[0]?.url).toBe("/v1/retention?keyspace=main");
    expect(r.stdout).toBe(
      "keyspace main: binlog kept 7d (604800 s) and up to 1 GiB (1073741824 bytes) per tablet (the default); a reader's hold kept 7d (604800 s) after it stops advancing\n",
    );
    const j = await vtctl(["keyspace", "retention", "main", "--json"]);
    expect(JSON.parse(j.stdout)).toEqual(shown);
  });

  it("with --seconds, --bytes and/or --hold-seconds sends only those fields", async () => {
    replies["POST /v1/retention"] = (body) => ({
      body: { ...shown, ...(body as Record<string, unknown>), isDefault: false },
    });
    const r = await vtctl(["keyspace", "retention", "main", "--seconds", "3600"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      "keyspace main: binlog kept 1h (3600 s) and up to 1 GiB (1073741824 bytes) per tablet; a reader's hold kept 7d (604800 s) after it stops advancing\n",
    );
    expect((await vtctl(["keyspace", "retention", "main", "--bytes=1000", "--seconds", "0"])).code).toBe(0);
    const held = await vtctl(["keyspace", "retention", "main", "--hold-seconds", "86400"]);
    expect(held.stderr).toBe("");
    expect(held.stdout).toContain("a reader's hold kept 1d (86400 s)");
    expect((await vtctl(["keyspace", "retention", "main", "--hold-seconds", "default"])).code).toBe(0);
    expect(received.map((x) => x.body)).toEqual([
      { keyspace: "main", retentionSeconds: 3600 },
      { keyspace: "main", retentionSeconds: 0, retentionBytes: 1000 },
      { keyspace: "main", holdSeconds: 86400 },
      { keyspace: "main", holdSeconds: null },
    ]);
  });

  it("refuses a bad number or a stray flag before sending, and passes server refusals through", async () => {
    for (const args of [
      ["keyspace", "retention", "main", "--seconds", "-1"],
      ["keyspace", "retention", "main", "--bytes", "1e9"],
      ["keyspace", "retention", "main", "--hold-seconds", "soon"],
      ["keyspace", "retention", "main", "--shards", "2"],
      ["keyspace", "retention"],
      ["keyspace", "create", "x", "--shards", "2", "--seconds", "5"],
    ]) {
      const r = await vtctl(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: /);
    }
    expect(received).toHaveLength(0);
    replies["POST /v1/retention"] = {
      status: 400,
      body: {
        error: {
          code: "INVALID_ARGUMENT",
          message: "binlog retention: retentionSeconds must be an integer from 0 to 315360000, not 999999999999",
          retryable: false,
        },
      },
    };
    const r = await vtctl(["keyspace", "retention", "main", "--seconds", "999999999999"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("INVALID_ARGUMENT: binlog retention: retentionSeconds");
  });
});

describe("vschema", () => {
  const VSCHEMA = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };

  it("apply sends the file's JSON", async () => {
    const file = join(tmp, "vschema.json");
    await writeFile(file, JSON.stringify(VSCHEMA));
    replies["POST /v1/vschema"] = (body) => ({ body });
    const r = await vtctl(["vschema", "apply", "main", "--file", file, "--token", "adm"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("applied vschema to keyspace main\n");
    expect(received[0]?.body).toEqual({ keyspace: "main", vschema: VSCHEMA });
    expect(received[0]?.headers.authorization).toBe("Bearer adm");
  });

  it("apply rejects a missing or non-JSON file before sending", async () => {
    const file = join(tmp, "broken.json");
    await writeFile(file, "{ not json");
    for (const args of [
      ["vschema", "apply", "main", "--file", file],
      ["vschema", "apply", "main", "--file", join(tmp, "nope.json")],
      ["vschema", "apply", "main"],
    ]) {
      const r = await vtctl(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: /);
    }
    expect(received).toHaveLength(0);
  });

  it("show prints the keyspace's vschema", async () => {
    replies["GET /v1/vschema"] = { body: { keyspace: "main", vschema: VSCHEMA } };
    const r = await vtctl(["vschema", "show", "main"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(VSCHEMA);
    expect(received[0]?.url).toBe("/v1/vschema?keyspace=main");
    const j = await vtctl(["vschema", "show", "main", "--json"]);
    expect(JSON.parse(j.stdout)).toEqual({ keyspace: "main", vschema: VSCHEMA });
  });
});

describe("reshard and vdiff", () => {
  const VIEW = {
    keyspace: "main",
    workflow: "split",
    kind: "reshard",
    state: "running",
    sources: [{ shard: "-80", tablet: "main/-80" }],
    targets: [
      { shard: "-40", tablet: "main/-40~1" },
      { shard: "40-80", tablet: "main/40-80~1" },
    ],
    onDdl: "ignore",
    autoSwitch: false,
    streams: [
      { id: "split/-80", target: "-40", source: "-80", phase: "running", rowsCopied: 500, lagMs: 12, message: null },
      { id: "split/-80", target: "40-80", source: "-80", phase: "copy", rowsCopied: 400, lagMs: 0, message: null },
    ],
    rowsCopied: 900,
    rowsTotal: 1000,
    lagMs: 12,
  };

  it("reshard create sends the shards and options, and prints the workflow", async () => {
    replies["POST /v1/workflows"] = { body: VIEW };
    const r = await vtctl([
      "reshard",
      "create",
      "--keyspace",
      "main",
      "--workflow",
      "split",
      "--source-shards",
      "-80",
      "--target-shards",
      "-40,40-80",
      "--on-ddl",
      "stop",
      "--auto-switch",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(received[0]?.body).toEqual({
      action: "create",
      kind: "reshard",
      keyspace: "main",
      workflow: "split",
      sourceShards: ["-80"],
      targetShards: ["-40", "40-80"],
      onDdl: "stop",
      autoSwitch: true,
    });
    expect(r.stdout).toContain("workflow main.split (reshard): running");
    expect(r.stdout).toContain("900 / ~1000 rows");
  });

  it("reshard show, switchtraffic and the other verbs; --json prints the server's answer", async () => {
    replies["GET /v1/workflows"] = { body: VIEW };
    replies["POST /v1/workflows"] = (body) => ({ body: { ...VIEW, state: "switched", pauseMs: 7, action: (body as { action: string }).action } });
    const show = await vtctl(["reshard", "show", "--keyspace", "main", "--workflow", "split"]);
    expect(show.code).toBe(0);
    expect(received[0]?.url).toBe("/v1/workflows?keyspace=main&workflow=split");
    for (const verb of ["switchtraffic", "reversetraffic", "complete", "cancel"]) {
      received = [];
      const r = await vtctl(["reshard", verb, "--keyspace", "main", "--workflow", "split", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(received[0]?.body).toEqual({ action: verb, keyspace: "main", workflow: "split" });
      expect(JSON.parse(r.stdout)).toMatchObject({ state: "switched", pauseMs: 7 });
    }
  });

  it("movetables create sends the keyspaces and tables, the other verbs name the target; bad lines send nothing", async () => {
    const MOVE = { ...VIEW, keyspace: "k2", workflow: "move", kind: "movetables", sourceKeyspace: "k1", tables: ["customer", "corder"] };
    replies["POST /v1/workflows"] = { body: MOVE };
    const r = await vtctl(["movetables", "create", "--source", "k1", "--target", "k2", "--workflow", "move", "--tables", "customer,corder"]);
    expect(r.code, r.stderr).toBe(0);
    expect(received[0]?.body).toEqual({
      action: "create",
      kind: "movetables",
      keyspace: "k2",
      workflow: "move",
      sourceKeyspace: "k1",
      tables: ["customer", "corder"],
    });
    expect(r.stdout).toContain("workflow k2.move (movetables): running");
    expect(r.stdout).toContain("tables: customer, corder from keyspace k1");
    received = [];
    const sw = await vtctl(["movetables", "switchtraffic", "--target", "k2", "--workflow", "move", "--json"]);
    expect(sw.code, sw.stderr).toBe(0);
    expect(received[0]?.body).toEqual({ action: "switchtraffic", keyspace: "k2", workflow: "move" });
    received = [];
    for (const args of [
      ["movetables", "create", "--target", "k2", "--workflow", "move", "--tables", "t"],
      ["movetables", "create", "--source", "k1", "--target", "k2", "--workflow", "move"],
      ["movetables", "complete", "--workflow", "move"],
      ["movetables", "cancel", "--target", "k2", "--workflow", "move", "--tables", "t"],
    ]) {
      const bad = await vtctl(args);
      expect(bad.code, args.join(" ")).toBe(1);
      expect(bad.stderr).toMatch(/^INVALID_ARGUMENT: /);
    }
    expect(received).toHaveLength(0);
  });

  it("bad reshard lines exit 1 with INVALID_ARGUMENT and send nothing", async () => {
    for (const args of [
      ["reshard"],
      ["reshard", "frob", "--keyspace", "k", "--workflow", "w"],
      ["reshard", "show", "--keyspace", "k"],
      ["reshard", "create", "--keyspace", "k", "--workflow", "w", "--source-shards", "-80"],
      ["reshard", "switchtraffic", "--keyspace", "k", "--workflow", "w", "--target-shards", "-40"],
      ["vdiff", "--keyspace", "k"],
    ]) {
      const r = await vtctl(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/^INVALID_ARGUMENT: /);
    }
    expect(received).toHaveLength(0);
  });

  it("a server refusal prints its code", async () => {
    replies["POST /v1/workflows"] = {
      status: 400,
      body: { error: { code: "INVALID_ARGUMENT", message: "workflow split cannot switch yet", retryable: false } },
    };
    const r = await vtctl(["reshard", "switchtraffic", "--keyspace", "main", "--workflow", "split"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("INVALID_ARGUMENT: workflow split cannot switch yet\n");
  });

  it("vdiff prints each table's counts and samples", async () => {
    replies["POST /v1/workflows"] = {
      body: {
        keyspace: "main",
        workflow: "split",
        match: false,
        done: true,
        at: 1,
        tables: [{ table: "users", compared: 10, missing: 1, extra: 0, mismatched: 0, samples: [{ kind: "missing", key: [7] }] }],
      },
    };
    const r = await vtctl(["vdiff", "--keyspace", "main", "--workflow", "split"]);
    expect(r.code, r.stderr).toBe(0);
    expect(received[0]?.body).toEqual({ action: "vdiff", keyspace: "main", workflow: "split" });
    expect(r.stdout).toContain("DIFFERENCES FOUND");
    expect(r.stdout).toContain("users: 10 compared, 1 missing, 0 extra, 0 mismatched");
    expect(r.stdout).toContain("missing key [7]");
  });
});

describe("subscription", () => {
  const SUB = {
    name: "orders",
    keyspace: "main",
    tables: ["orders"],
    binding: "SUBSCRIPTION_QUEUE",
    token: "tok0",
    id: "abc",
    createdAt: 1,
    status: {
      name: "orders",
      id: "abc",
      running: true,
      copying: false,
      published: 42,
      messages: 7,
      lastTs: 1,
      lagMs: 350,
      token: "tok1",
      lastError: { code: "NOT_SERVING", message: "shard -80 did not answer", at: 2 },
    },
  };

  it("create sends the keyspace, name, binding, tables and from, and prints the subscription", async () => {
    replies["POST /v1/subscriptions"] = { body: SUB };
    const r = await vtctl([
      "subscription",
      "create",
      "--keyspace",
      "main",
      "--name",
      "orders",
      "--binding",
      "SUBSCRIPTION_QUEUE",
      "--tables",
      "orders, items",
      "--from",
      "tok0",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(received[0]?.body).toEqual({
      action: "create",
      keyspace: "main",
      name: "orders",
      binding: "SUBSCRIPTION_QUEUE",
      tables: ["orders", "items"],
      from: "tok0",
    });
    expect(r.stdout).toContain("created subscription orders of keyspace main onto SUBSCRIPTION_QUEUE, from tok1");
    const plain = await vtctl(["subscription", "create", "--keyspace", "main", "--name", "orders", "--binding", "Q", "--json"]);
    expect(received[1]?.body).toEqual({ action: "create", keyspace: "main", name: "orders", binding: "Q" });
    expect(JSON.parse(plain.stdout)).toEqual(SUB);
    await vtctl(["subscription", "create", "--keyspace", "main", "--name", "orders", "--binding", "Q", "--from", "start"]);
    expect(received[2]?.body).toEqual({ action: "create", keyspace: "main", name: "orders", binding: "Q", from: "start" });
  });

  it("show prints each subscription's lag, counts and last error; --name asks for one; --json prints the answer", async () => {
    const copying = { ...SUB, name: "fresh", status: { ...SUB.status, copying: true } };
    replies["GET /v1/subscriptions"] = { body: { subscriptions: [SUB, { ...SUB, name: "all", tables: null, status: null }, copying] } };
    const r = await vtctl(["subscription", "show"]);
    expect(r.stdout).toMatch(/fresh\s*\|\s*main\s*\|\s*orders\s*\|\s*SUBSCRIPTION_QUEUE\s*\|\s*copying\s*\|/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /orders\s*\|\s*main\s*\|\s*orders\s*\|\s*SUBSCRIPTION_QUEUE\s*\|\s*yes\s*\|\s*42\s*\|\s*7\s*\|\s*350 ms\s*\|\s*NOT_SERVING: shard -80 did not answer/,
    );
    expect(r.stdout).toMatch(/all\s*\|\s*main\s*\|\s*\(all\)\s*\|\s*SUBSCRIPTION_QUEUE\s*\|\s*\?/);
    const one = await vtctl(["subscription", "show", "--name", "orders", "--json"]);
    expect(received[1]?.url).toBe("/v1/subscriptions?name=orders");
    expect(JSON.parse(one.stdout)).toEqual({ subscriptions: [SUB, { ...SUB, name: "all", tables: null, status: null }, copying] });
    replies["GET /v1/subscriptions"] = { body: { subscriptions: [] } };
    expect((await vtctl(["subscription", "show"])).stdout).toBe("no subscriptions\n");
  });

  it("update sends the name and the tables ('*': null, every table) and prints what it publishes now", async () => {
    replies["POST /v1/subscriptions"] = (body) => ({ body: { ...SUB, tables: (body as { tables: unknown }).tables } });
    const r = await vtctl(["subscription", "update", "--name", "orders", "--tables", "orders, items"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("updated subscription orders: it publishes orders,items from its next round on\n");
    const all = await vtctl(["subscription", "update", "--name", "orders", "--tables", "*"]);
    expect(all.stdout).toBe("updated subscription orders: it publishes every table from its next round on\n");
    expect(received.map((x) => x.body)).toEqual([
      { action: "update", name: "orders", tables: ["orders", "items"] },
      { action: "update", name: "orders", tables: null },
    ]);
  });

  it("delete sends the name and says whether the publisher stopped", async () => {
    replies["POST /v1/subscriptions"] = (body) => ({ body: { deleted: SUB, stopped: (body as { name: string }).name === "orders" } });
    const r = await vtctl(["subscription", "delete", "--name", "orders"]);
    expect(r.code).toBe(0);
    expect(received[0]?.body).toEqual({ action: "delete", name: "orders" });
    expect(r.stdout).toContain("deleted subscription orders: its publisher stopped");
    expect((await vtctl(["subscription", "delete", "--name", "other"])).stdout).toContain("stops by itself");
  });

  it("bad lines exit 1 and send nothing; a server refusal prints its code", async () => {
    const bad: [string[], string][] = [
      [["subscription"], "INVALID_ARGUMENT"],
      [["subscription", "list"], "INVALID_ARGUMENT"],
      [["subscription", "create", "--name", "x", "--binding", "Q"], "INVALID_ARGUMENT"],
      [["subscription", "create", "--keyspace", "main", "--binding", "Q"], "INVALID_ARGUMENT"],
      [["subscription", "create", "--keyspace", "main", "--name", "x"], "INVALID_ARGUMENT"],
      [["subscription", "create", "--keyspace", "main", "--name", "x", "--binding", "Q", "--tables", ","], "INVALID_ARGUMENT"],
      [["subscription", "delete"], "INVALID_ARGUMENT"],
      [["subscription", "update", "--name", "x"], "INVALID_ARGUMENT"],
      [["subscription", "update", "--tables", "a"], "INVALID_ARGUMENT"],
      [["subscription", "update", "--name", "x", "--tables", ","], "INVALID_ARGUMENT"],
      [["subscription", "update", "--name", "x", "--tables", "a", "--binding", "Q"], "INVALID_ARGUMENT"],
      [["subscription", "delete", "--name", "x", "--binding", "Q"], "INVALID_ARGUMENT"],
      [["subscription", "show", "--keyspace", "main"], "INVALID_ARGUMENT"],
      [["subscription", "show", "extra"], "INVALID_ARGUMENT"],
      [["subscription", "show", "--workflow", "w"], "INVALID_ARGUMENT"],
    ];
    for (const [args, code] of bad) {
      const r = await vtctl(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toMatch(new RegExp(`^${code}: `));
    }
    expect(received).toHaveLength(0);
    replies["POST /v1/subscriptions"] = {
      status: 400,
      body: { error: { code: "UNKNOWN_TABLE", message: "subscription: no table nope in keyspace main", retryable: false } },
    };
    const r = await vtctl(["subscription", "create", "--keyspace", "main", "--name", "x", "--binding", "Q", "--tables", "nope"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("UNKNOWN_TABLE: subscription: no table nope in keyspace main\n");
  });

  it("topology lists subscriptions with their lag", async () => {
    replies["GET /v1/topology"] = {
      body: { ...TOPOLOGY, subscriptions: [{ name: "orders", keyspace: "main", binding: "Q", lagMs: 120, published: 9, lastError: null }] },
    };
    const r = await vtctl(["topology"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("subscription orders (main → Q): lag 120 ms, 9 transactions published\n");
  });
});
