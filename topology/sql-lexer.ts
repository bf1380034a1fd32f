// SQL tokens exactly as SQLite's own tokenizer (tokenize.c, sqlite3GetToken) reads them. The
// gate uses it to check that sql-parser-cst read the user's text the way SQLite will, and both
// the gate and the tablet use it to check every text sent to a tablet before it runs. It works
// on UTF-16 code units; every code unit >= 0x80 stands for a UTF-8 byte >= 0x80, which SQLite
// treats as an identifier character, so the readings agree.

export type TokenKind =
  /** ASCII whitespace (a run starts at \t \n \f \r or space and continues over \v too). */
  | "space"
  /** `-- …` to the end of the line (\n only), or `/* … *\/` (unterminated: to the end). */
  | "comment"
  /** '…' with '' escapes. */
  | "string"
  /** A bare word: keyword or identifier (letters, digits, _, $, any non-ASCII character). */
  | "word"
  /** "…", `…` (doubled delimiter escapes) or […] (no escapes). */
  | "quoted"
  /** X'hex' with an even number of hex digits. */
  | "blob"
  | "number"
  /** ?NNN, or :name @name $name #name (also with `::` parts and a `(…)` suffix). */
  | "variable"
  | "semi"
  /** Operators and punctuation: ( ) , . + - * / % = == < <= <> << > >= >> != | || & ~ -> ->> */
  | "op"
  /** What SQLite refuses: unterminated strings, `1e`, `0x`, a lone `!`, NUL, `\`, … */
  | "illegal";

export interface Token {
  readonly kind: TokenKind;
  readonly start: number;
  readonly end: number;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isXDigit = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
/** sqlite3Isspace: \t \n \v \f \r and space. */
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
/** IdChar: letters, digits, _, $ and every byte >= 0x80. */
export const isIdChar = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c === 36 || c >= 0x80;
/** SQLite 3.46+ accepts `_` between digits of a numeric literal. */
const DIGIT_SEPARATOR = 95;

/** The length of the token at `i` (never 0 before the end) and its kind. */
function tokenAt(s: string, i: number): { kind: TokenKind; len: number } {
  const at = (k: number): number => (i + k < s.length ? s.charCodeAt(i + k) : 0);
  const c = at(0);
  switch (c) {
    case 9:
    case 10:
    case 12:
    case 13:
    case 32: {
      let n = 1;
      while (i + n < s.length && isSpace(at(n))) n++;
      return { kind: "space", len: n };
    }
    case 45 /* - */:
      {
        if (at(1) === 45) {
          let n = 2;
          while (i + n < s.length && at(n) !== 0 && at(n) !== 10) n++;
          return { kind: "comment", len: n };
        }
        if (at(1) === 62 /* > */) return { kind: "op", len: at(2) === 62 ? 3 : 2 };
        return { kind: "op", len: 1 };
      }
    case 40:
    case 41:
    case 43:
    case 42:
    case 37:
    case 44:
    case 38:
    case 126:
      return { kind: "op", len: 1 };
    case 59:
      return { kind: "semi", len: 1 };
    case 47 /* / */:
      {
        if (at(1) !== 42 || i + 2 >= s.length || at(2) === 0) return { kind: "op", len: 1 };
        let n = 3;
        let prev = at(2);
        while (i + n < s.length && at(n) !== 0 && !(prev === 42 && at(n) === 47)) prev = at(n++);
        return { kind: "comment", len: i + n < s.length && at(n) === 47 ? n + 1 : n };
      }
    case 61:
      return { kind: "op", len: at(1) === 61 ? 2 : 1 };
    case 60:
      return { kind: "op", len: at(1) === 61 || at(1) === 62 || at(1) === 60 ? 2 : 1 };
    case 62:
      return { kind: "op", len: at(1) === 61 || at(1) === 62 ? 2 : 1 };
    case 33:
      return at(1) === 61 ? { kind: "op", len: 2 } : { kind: "illegal", len: 1 };
    case 124:
      return { kind: "op", len: at(1) === 124 ? 2 : 1 };
    case 39:
    case 34:
    case 96: {
      let n = 1;
      for (; i + n < s.length && at(n) !== 0; n++) {
        if (at(n) === c) {
          if (at(n + 1) === c) n++;
          else return { kind: c === 39 ? "string" : "quoted", len: n + 1 };
        }
      }
      return { kind: "illegal", len: n };
    }
    case 91 /* [ */:
      {
        let n = 1;
        while (i + n < s.length && at(n) !== 0 && at(n) !== 93) n++;
        return i + n < s.length && at(n) === 93 ? { kind: "quoted", len: n + 1 } : { kind: "illegal", len: n };
      }
    case 46 /* . */:
      if (!isDigit(at(1))) return { kind: "op", len: 1 };
      return numberAt(s, i);
    case 63 /* ? */:
      {
        let n = 1;
        while (isDigit(at(n))) n++;
        return { kind: "variable", len: n };
      }
    case 36:
    case 64:
    case 58:
    case 35: {
      let n = 1;
      let named = 0;
      for (; i + n < s.length && at(n) !== 0; n++) {
        const d = at(n);
        if (isIdChar(d)) named++;
        else if (d === 40 && named > 0) {
          do n++;
          while (i + n < s.length && at(n) !== 0 && !isSpace(at(n)) && at(n) !== 41);
          if (at(n) === 41) return { kind: "variable", len: n + 1 };
          return { kind: "illegal", len: n };
        } else if (d === 58 && at(n + 1) === 58) n++;
        else break;
      }
      return { kind: named === 0 ? "illegal" : "variable", len: n };
    }
    case 120:
    case 88 /* x X */:
      if (at(1) === 39) {
        let n = 2;
        while (isXDigit(at(n))) n++;
        if (at(n) !== 39 || n % 2 !== 0) {
          while (i + n < s.length && at(n) !== 0 && at(n) !== 39) n++;
          return { kind: "illegal", len: i + n < s.length && at(n) === 39 ? n + 1 : n };
        }
        return { kind: "blob", len: n + 1 };
      }
      break;
    default:
      if (isDigit(c)) return numberAt(s, i);
      if (c === 0xfeff) return { kind: "space", len: 1 };
      if (!isIdChar(c)) return { kind: "illegal", len: 1 };
  }
  let n = 1;
  while (isIdChar(at(n))) n++;
  return { kind: "word", len: n };
}

function numberAt(s: string, i: number): { kind: TokenKind; len: number } {
  const at = (k: number): number => (i + k < s.length ? s.charCodeAt(i + k) : 0);
  let n = 0;
  let kind: TokenKind = "number";
  if (at(0) === 48 && (at(1) === 120 || at(1) === 88) && isXDigit(at(2))) {
    n = 3;
    while (isXDigit(at(n)) || at(n) === DIGIT_SEPARATOR) n++;
  } else {
    while (isDigit(at(n)) || at(n) === DIGIT_SEPARATOR) n++;
    if (at(n) === 46) {
      n++;
      while (isDigit(at(n)) || at(n) === DIGIT_SEPARATOR) n++;
    }
    if ((at(n) === 101 || at(n) === 69) && (isDigit(at(n + 1)) || ((at(n + 1) === 43 || at(n + 1) === 45) && isDigit(at(n + 2))))) {
      n += 2;
      while (isDigit(at(n)) || at(n) === DIGIT_SEPARATOR) n++;
    }
  }
  while (isIdChar(at(n))) {
    kind = "illegal";
    n++;
  }
  return { kind, len: n };
}

/** Every token of `sql`, whitespace and comments included, covering the text without gaps. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < sql.length; ) {
    const { kind, len } = tokenAt(sql, i);
    // A NUL ends SQLite's text; here it is one illegal character, so nothing after it hides.
    const n = Math.max(1, len);
    out.push({ kind, start: i, end: i + n });
    i += n;
  }
  return out;
}

/** The name a word or quoted-identifier token (or a string used as a name) spells. */
export function tokenName(sql: string, t: Token): string {
  const raw = sql.slice(t.start, t.end);
  if (t.kind === "word") return raw;
  const q = raw.charAt(0);
  if (q === "[") return raw.slice(1, -1);
  return raw.slice(1, -1).replaceAll(q + q, q);
}
