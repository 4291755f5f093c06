/**
 * Reads parts of a large JSON document without parsing all of it: the members of an
 * object and the elements of an array are located by scanning, and only the values a
 * caller asks for are parsed. Restore uses it on snapshot records and metadata, whose
 * per-segment lists (100k entries and more) would otherwise become as many strings on
 * the heap at once.
 *
 * The text is a string or UTF-8 bytes: JSON's structural characters are ASCII, and no
 * byte of a multi-byte UTF-8 sequence is, so the scan is the same for both. Values are
 * validated when they are parsed; the structure around them is checked as it is scanned.
 * @internal
 */

/** Where a value lies in the text: `[start, end)`. */
export interface JsonSpan {
  start: number
  end: number
}

/** Thrown on text that is not the JSON a scan expects; callers map it to their own error. */
export class LazyJsonError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LazyJsonError'
  }
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/** A JSON document, read lazily. */
export class LazyJson {
  readonly #text: string | Uint8Array
  readonly #bytes: Buffer | undefined
  /** Length of the text (characters or bytes). */
  readonly length: number

  constructor(text: string | Uint8Array) {
    this.#text = text
    this.#bytes = typeof text === 'string' ? undefined : Buffer.from(text.buffer, text.byteOffset, text.byteLength)
    this.length = text.length
  }

  /** The whole document. */
  get root(): JsonSpan {
    const start = this.#skipSpace(0)
    const end = this.#skipValue(start)
    if (this.#skipSpace(end) !== this.length) throw new LazyJsonError(`unexpected text at ${end}`)
    return { start, end }
  }

  #code(i: number): number {
    const t = this.#text
    return typeof t === 'string' ? t.charCodeAt(i) : t[i]
  }

  /** The text of a span. */
  text(span: JsonSpan): string {
    return this.#bytes === undefined ? (this.#text as string).slice(span.start, span.end) : this.#bytes.toString('utf8', span.start, span.end)
  }

  /** Parses the value of a span. */
  parse(span: JsonSpan): unknown {
    try {
      return JSON.parse(this.text(span))
    } catch (err) {
      throw new LazyJsonError(`bad value at ${span.start}: ${(err as Error).message}`)
    }
  }

  /** True when the span holds an object, an array or a string. */
  is(span: JsonSpan, kind: 'object' | 'array' | 'string'): boolean {
    const c = this.#code(span.start)
    return c === (kind === 'object' ? OPEN_BRACE : kind === 'array' ? OPEN_BRACKET : QUOTE)
  }

  /** The members of the object at `span`, by key (a repeated key: the last one, as `JSON.parse` does). */
  members(span: JsonSpan): Map<string, JsonSpan> {
    if (!this.is(span, 'object')) throw new LazyJsonError(`expected an object at ${span.start}`)
    const out = new Map<string, JsonSpan>()
    let i = this.#skipSpace(span.start + 1)
    if (this.#code(i) === CLOSE_BRACE) return out
    for (;;) {
      if (this.#code(i) !== QUOTE) throw new LazyJsonError(`expected a key at ${i}`)
      const keyEnd = this.#skipString(i)
      const key = this.parse({ start: i, end: keyEnd }) as string
      i = this.#skipSpace(keyEnd)
      if (this.#code(i) !== COLON) throw new LazyJsonError(`expected ':' at ${i}`)
      const start = this.#skipSpace(i + 1)
      const end = this.#skipValue(start)
      out.set(key, { start, end })
      i = this.#skipSpace(end)
      const c = this.#code(i)
      if (c === CLOSE_BRACE) return out
      if (c !== COMMA) throw new LazyJsonError(`expected ',' or '}' at ${i}`)
      i = this.#skipSpace(i + 1)
    }
  }

  /** The elements of the array at `span`, in order, found as they are asked for. */
  *elements(span: JsonSpan): Generator<JsonSpan, void, undefined> {
    if (!this.is(span, 'array')) throw new LazyJsonError(`expected an array at ${span.start}`)
    let i = this.#skipSpace(span.start + 1)
    if (this.#code(i) === CLOSE_BRACKET) return
    for (;;) {
      const end = this.#skipValue(i)
      yield { start: i, end }
      i = this.#skipSpace(end)
      const c = this.#code(i)
      if (c === CLOSE_BRACKET) return
      if (c !== COMMA) throw new LazyJsonError(`expected ',' or ']' at ${i}`)
      i = this.#skipSpace(i + 1)
    }
  }

  #skipSpace(i: number): number {
    while (i < this.length && isSpace(this.#code(i))) i++
    return i
  }

  /** End of the string starting at `i` (a quote). */
  #skipString(i: number): number {
    const t = this.#text
    for (let from = i + 1; ; ) {
      const q = typeof t === 'string' ? t.indexOf('"', from) : t.indexOf(QUOTE, from)
      if (q < 0) throw new LazyJsonError(`unterminated string at ${i}`)
      let backslashes = 0
      while (this.#code(q - 1 - backslashes) === BACKSLASH) backslashes++
      if (backslashes % 2 === 0) return q + 1
      from = q + 1
    }
  }

  /** End of the value starting at `i`; nested values are skipped, not checked (parsing a span checks it). */
  #skipValue(i: number): number {
    if (i >= this.length) throw new LazyJsonError('unexpected end of text')
    const c = this.#code(i)
    if (c === QUOTE) return this.#skipString(i)
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      let depth = 0
      for (let j = i; j < this.length; ) {
        const d = this.#code(j)
        if (d === QUOTE) {
          j = this.#skipString(j)
          continue
        }
        if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++
        else if (d === CLOSE_BRACE || d === CLOSE_BRACKET) {
          depth--
          if (depth === 0) return j + 1
        }
        j++
      }
      throw new LazyJsonError(`unterminated ${c === OPEN_BRACE ? 'object' : 'array'} at ${i}`)
    }
    let j = i
    while (j < this.length) {
      const d = this.#code(j)
      if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || isSpace(d)) break
      j++
    }
    if (j === i) throw new LazyJsonError(`expected a value at ${i}`)
    return j
  }
}
