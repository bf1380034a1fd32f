// The one error catalogue (as Vitess's vterrors). Callers branch on `code`, never on message
// text. It lives in the contract leaf, the root of the dependency order, so every layer (and the
// client) imports this file. Codes are a ⚑ contract: extend, never rename.

export type ErrorCode =
  | "SYNTAX_ERROR"
  | "UNSUPPORTED"
  | "UNKNOWN_TABLE"
  | "INVALID_ARGUMENT"
  | "CONSTRAINT"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "NOT_SERVING"
  | "TIMEOUT"
  | "TX_ABORTED"
  | "INTERNAL";

interface CodeInfo {
  readonly status: number;
  readonly retryable: boolean;
  /** One line on when the code is used. */
  readonly description: string;
}

export const ERROR_CODES: Readonly<Record<ErrorCode, CodeInfo>> = {
  SYNTAX_ERROR: { status: 400, retryable: false, description: "the SQL does not parse; `position` is the 0-based character offset" },
  UNSUPPORTED: {
    status: 400,
    retryable: false,
    description: "valid SQL that cannot be answered correctly across shards (yet); the message names the construct",
  },
  UNKNOWN_TABLE: { status: 400, retryable: false, description: "the statement names a table the keyspace does not have" },
  INVALID_ARGUMENT: { status: 400, retryable: false, description: "a malformed request, parameter, value, vschema or topology change" },
  CONSTRAINT: { status: 409, retryable: false, description: "a UNIQUE, PRIMARY KEY, NOT NULL, CHECK or FOREIGN KEY constraint failed" },
  UNAUTHENTICATED: { status: 401, retryable: false, description: "the bearer token is missing or wrong" },
  PERMISSION_DENIED: { status: 403, retryable: false, description: "the operation needs more than the caller has (an admin token, or a _vt system table)" },
  NOT_SERVING: {
    status: 503,
    retryable: true,
    description: "the shard does not serve this target now (cutover, resharding); retry after refreshing the serving graph",
  },
  TIMEOUT: { status: 504, retryable: true, description: "the operation ran past its deadline" },
  TX_ABORTED: { status: 409, retryable: false, description: "the transaction was rolled back and nothing in it was applied" },
  INTERNAL: { status: 500, retryable: false, description: "a bug or an unexpected failure; the message says where" },
};

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && Object.hasOwn(ERROR_CODES, v);
}

/**
 * The error every layer throws. Extra fields (`position`, `statementIndex`, `servingVersion`,
 * `shard`) are plain properties so they survive Workers RPC and capnweb, which keep only
 * built-in error classes and own enumerable fields.
 */
export class VtError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  [extra: string]: unknown;

  constructor(code: ErrorCode, message: string, extra?: Readonly<Record<string, unknown>>) {
    super(message);
    this.name = "VtError";
    this.code = code;
    this.retryable = ERROR_CODES[code].retryable;
    if (extra) Object.assign(this, extra);
  }
}

/** The JSON body of an error response and of an error across RPC. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  [extra: string]: unknown;
}

const RESERVED = new Set(["name", "message", "stack", "code", "retryable", "cause"]);

/**
 * Any thrown value as a catalogue error. Errors that crossed an RPC boundary arrive as plain
 * `Error`s carrying `code`; they keep it. Anything without a known code is INTERNAL.
 */
export function toVtError(e: unknown): VtError {
  if (e instanceof VtError) return e;
  if (e instanceof Error) {
    const rec = e as Error & Record<string, unknown>;
    const code = rec["code"];
    if (isErrorCode(code)) {
      const extra: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(rec)) if (!RESERVED.has(k)) extra[k] = v;
      return new VtError(code, e.message.replace(/^VtError: /, ""), extra);
    }
    // Durable Object infrastructure errors (reset, overloaded, broken connection) say `retryable`.
    if (rec["retryable"] === true || rec["overloaded"] === true) {
      return new VtError("NOT_SERVING", `temporarily unavailable: ${e.message}`, { cause: e.message });
    }
    return new VtError("INTERNAL", e.message, { cause: e });
  }
  return new VtError("INTERNAL", String(e));
}

export function errorBody(e: VtError): ErrorBody {
  const body: ErrorBody = { code: e.code, message: e.message, retryable: e.retryable };
  for (const [k, v] of Object.entries(e)) {
    if (!RESERVED.has(k) && v !== undefined) body[k] = v;
  }
  return body;
}

/** An Error that crosses capnweb / Workers RPC with its code intact (only built-in classes survive). */
export function toWireError(e: unknown): Error {
  const vt = toVtError(e);
  const out = new Error(vt.message) as Error & Record<string, unknown>;
  Object.assign(out, errorBody(vt));
  return out;
}
