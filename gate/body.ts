// Request bodies read as a stream with a byte cap. A declared Content-Length over the cap is
// refused before any byte is read; without one (chunked) or with a wrong one, reading stops
// and the stream is cancelled at the first chunk that passes the cap, so the gate never holds
// more than the cap plus one chunk of any body.

import { VtError } from "../contract/errors.ts";

/** Largest request body the gate reads (HTTP JSON and capnweb HTTP batches alike). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

function tooLarge(cap: number): VtError {
  return new VtError("INVALID_ARGUMENT", `request body is over ${cap} bytes`, { limit: cap });
}

/** The body's bytes, at most `cap` of them; more is INVALID_ARGUMENT. */
export async function readBodyBytes(req: Request, cap = MAX_BODY_BYTES): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > cap) throw tooLarge(cap);
  const body = req.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((e: unknown) => {
        throw new VtError("INVALID_ARGUMENT", `the request body could not be read: ${e instanceof Error ? e.message : String(e)}`);
      });
      if (done) break;
      total += value.byteLength;
      if (total > cap) {
        await reader.cancel("request body over the limit").catch(() => undefined);
        throw tooLarge(cap);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The body as UTF-8 text (invalid UTF-8 is INVALID_ARGUMENT, never silently replaced). */
export async function readBodyText(req: Request, cap = MAX_BODY_BYTES): Promise<string> {
  const bytes = await readBodyBytes(req, cap);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new VtError("INVALID_ARGUMENT", "the request body is not valid UTF-8");
  }
}
