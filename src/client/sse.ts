// A Server-Sent Events parser (the WHATWG "event stream" interpretation),
// fed raw chunks as they arrive: lines end with LF, CR or CRLF (also split
// across chunks); `:` starts a comment; `data` lines accumulate joined by LF; a
// blank line dispatches the message. Pure: no I/O, no timers.

export interface SseMessage {
  /** The `id` field of this message, when it had one. */
  readonly id: string | undefined;
  /** The `event` field, `message` when absent. */
  readonly event: string;
  readonly data: string;
}

const LF = 10;
const CR = 13;

export class SseParser {
  readonly #decoder = new TextDecoder('utf-8');
  #line = '';
  /** The previous chunk ended with CR: a LF starting the next one belongs to it. */
  #skipLineFeed = false;
  #sawFirstLine = false;
  #id: string | undefined;
  #event = '';
  #data = '';
  #hasData = false;

  /** @param maxMessageChars largest message (a line and the data gathered so far) before push() throws. */
  constructor(private readonly maxMessageChars: number = 32 * 1024 * 1024) {}

  /** Whether part of a message is buffered: more bytes are needed before it can be dispatched. */
  get midMessage(): boolean {
    return this.#line.length > 0 || this.#hasData || this.#id !== undefined || this.#event !== '';
  }

  /** Feeds a chunk; returns the messages it completed, in order. */
  push(chunk: Uint8Array): SseMessage[] {
    let text = this.#decoder.decode(chunk, { stream: true });
    if (this.#skipLineFeed && text.length > 0) {
      if (text.charCodeAt(0) === LF) text = text.slice(1);
      this.#skipLineFeed = false;
    }
    const messages: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      this.#line += text.slice(start, i);
      this.#takeLine(messages);
      if (c === CR) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === LF) i++;
        } else this.#skipLineFeed = true;
      }
      start = i + 1;
    }
    this.#line += text.slice(start);
    this.#checkSize();
    return messages;
  }

  #takeLine(out: SseMessage[]): void {
    let line = this.#line;
    this.#line = '';
    if (!this.#sawFirstLine) {
      this.#sawFirstLine = true;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    if (line === '') return this.#dispatch(out);
    if (line.charCodeAt(0) === 0x3a) return; // ':' starts a comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data += `${value}\n`;
        this.#hasData = true;
        this.#checkSize();
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      default:
        break; // `retry` and unknown fields: nothing this client needs
    }
  }

  #dispatch(out: SseMessage[]): void {
    if (this.#hasData) out.push({ id: this.#id, event: this.#event || 'message', data: this.#data.slice(0, -1) });
    this.#id = undefined;
    this.#event = '';
    this.#data = '';
    this.#hasData = false;
  }

  #checkSize(): void {
    if (this.#line.length + this.#data.length > this.maxMessageChars) {
      throw new RangeError(`an event-stream message is longer than ${this.maxMessageChars} characters`);
    }
  }
}
