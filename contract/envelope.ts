// How every tablet, topology and catalog RPC answers. Workers RPC keeps only an Error's message
// (not its own fields), and `code` must survive, so a method answers a value or the error's body
// as plain data, and the caller turns the body back into the error it was.

import { errorBody, toVtError, type ErrorBody, VtError } from "./errors.ts";

export type Envelope<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ErrorBody };

/** Runs `fn` and answers its value, or the catalogue body of what it threw. */
export function envelope<T>(fn: () => T): Envelope<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return { ok: false, error: errorBody(toVtError(e)) };
  }
}

/** `envelope` for an asynchronous `fn`: a rejection becomes the error's body. */
export function envelopeAsync<T>(fn: () => Promise<T>): Promise<Envelope<T>> {
  return fn().then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, error: errorBody(toVtError(e)) }),
  );
}

/** The value of an answer, or its error thrown again with its code and fields. */
export function unwrap<T>(e: Envelope<T>): T {
  if (e.ok) return e.value;
  throw new VtError(e.error.code, e.error.message, e.error);
}
