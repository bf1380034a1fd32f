// The SDK's one error class and the mapping of anything thrown (by capnweb, fetch or our own
// checks) onto it. Kept apart from api.ts so the implementation modules can throw it without an
// import cycle; api.ts re-exports it as part of the public surface.

import { ERROR_CODES, isErrorCode, type ErrorCode } from "../contract/errors.ts";

export type { ErrorCode };

/** Fields a VitessError may carry besides `code` and `message`. */
export interface VitessErrorOptions {
  /** Overrides the catalogue's default for the code. */
  readonly retryable?: boolean;
  readonly position?: number;
  readonly statementIndex?: number;
  /** The refusal's stable id (`VD1000` …) when the gate sent one. */
  readonly id?: string;
  readonly cause?: unknown;
}

/**
 * Every failure the client reports, local or remote. Branch on `code` (the server's error
 * catalogue: `SYNTAX_ERROR`, `CONSTRAINT`, `NOT_SERVING`, ...), never on `message`.
 *
 * - `retryable`: the same request may succeed if sent again (e.g. `NOT_SERVING` during a
 *   cutover, `TIMEOUT`, or the server could not be reached).
 * - `position`: for `SYNTAX_ERROR`, the 0-based character offset in the statement.
 * - `statementIndex`: for `batch`, the 0-based index of the statement that failed.
 * - `id`: for `UNSUPPORTED`, the refusal's stable id (`VD1000` …, one per refused construct):
 *   branch on `code` plus `id`, never on `message`.
 *
 * A failure to reach the server at all is `INTERNAL` with `retryable: true` and a message
 * starting "cannot reach <url>". A code this SDK does not know arrives as `INTERNAL` whose
 * `cause` is the original error.
 */
export class VitessError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  declare readonly position?: number;
  declare readonly statementIndex?: number;
  declare readonly id?: string;

  constructor(code: ErrorCode, message: string, options: VitessErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VitessError";
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    if (options.position !== undefined) Object.defineProperty(this, "position", { value: options.position, enumerable: true });
    if (options.statementIndex !== undefined) {
      Object.defineProperty(this, "statementIndex", { value: options.statementIndex, enumerable: true });
    }
    if (options.id !== undefined) Object.defineProperty(this, "id", { value: options.id, enumerable: true });
  }
}

function numberField(o: Record<string, unknown>, key: string): number | undefined {
  const v = o[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Reads `code`, `message`, `retryable`, `position`, `statementIndex`, `id` off an error-shaped record. */
export function errorFromFields(fields: Record<string, unknown>, fallbackMessage: string, cause?: unknown): VitessError {
  const rawCode = fields["code"];
  const rawMessage = typeof fields["message"] === "string" ? fields["message"] : fallbackMessage;
  // The gate may prefix the class name when it stringifies; the code already says what it is.
  const message = rawMessage.replace(/^(?:Vt|Vitess)Error: /, "");
  const options: { -readonly [K in keyof VitessErrorOptions]: VitessErrorOptions[K] } = {};
  const position = numberField(fields, "position");
  const statementIndex = numberField(fields, "statementIndex");
  if (position !== undefined) options.position = position;
  if (statementIndex !== undefined) options.statementIndex = statementIndex;
  if (typeof fields["id"] === "string") options.id = fields["id"];
  if (cause !== undefined) options.cause = cause;
  if (isErrorCode(rawCode)) {
    if (typeof fields["retryable"] === "boolean") options.retryable = fields["retryable"];
    return new VitessError(rawCode, message, options);
  }
  const shown = typeof rawCode === "string" ? `${rawCode}: ${message}` : message;
  return new VitessError("INTERNAL", shown, options);
}

/** Any thrown value as a VitessError; errors that crossed capnweb keep their `code`. */
export function toVitessError(e: unknown): VitessError {
  if (e instanceof VitessError) return e;
  if (e instanceof Error) {
    const fields: Record<string, unknown> = { ...e, message: e.message };
    return errorFromFields(fields, e.message, e);
  }
  return new VitessError("INTERNAL", String(e), { cause: e });
}

/** The error for a server that could not be reached (retryable: the request never ran, or never answered). */
export function unreachable(url: string, e: unknown): VitessError {
  const reason = e instanceof Error ? describeNetworkError(e) : String(e);
  return new VitessError("INTERNAL", `cannot reach ${url}: ${reason}`, { retryable: true, cause: e });
}

function describeNetworkError(e: Error): string {
  // Node's fetch says only "fetch failed"; the useful part (ECONNREFUSED, ENOTFOUND) is the cause.
  const cause: unknown = e.cause;
  if (cause instanceof Error && cause.message && cause.message !== e.message) return `${e.message} (${cause.message})`;
  return e.message;
}
