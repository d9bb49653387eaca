// Parsers for the reference histories (reference/README.md describes them):
// - Jepsen logs, jepsen/etcd_NNN.log: `INFO  jepsen.util - P  :type  :f  value`,
//   tab- or space-separated, one register; checked with the register model.
// - EDN maps, one per line, kv/cNN-*.txt:
//   `{:process P, :type :invoke, :f :get, :key "k", :value nil}`; checked with
//   the course-kv model.
// Time is the line number. A line that does not parse is an error: a checker
// fed half a history would give a verdict about some other history.

import { Keyword, readEdn, type EdnValue } from './edn.js';
import { historyOf, type History, type Operation, type ProcessId, type Request, type Result, type Status, type Value } from './history.js';
import { courseKvModel, registerModel, type Model } from './model.js';

export class HistoryParseError extends Error {
  constructor(lineNumber: number, line: string, reason: string) {
    super(`line ${lineNumber}: ${reason}: ${line}`);
    this.name = 'HistoryParseError';
  }
}

/** The key a Jepsen single-register log is filed under. */
export const JEPSEN_REGISTER_KEY = 'register';

interface Event {
  readonly lineNumber: number;
  readonly line: string;
  readonly process: ProcessId;
  readonly type: 'invoke' | 'ok' | 'fail' | 'info';
  readonly f: string;
  readonly key: string;
  readonly value: EdnValue;
}

/** EDN maps start with `{`; anything else is read as a Jepsen log. */
export function parseHistory(text: string): History {
  const first = text.split('\n').find((line) => line.trim() !== '');
  return first?.trimStart().startsWith('{') === true ? parseEdnHistory(text) : parseJepsenLog(text);
}

const JEPSEN_LINE = /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:(\w+)\s+(.+?)\s*$/;

export function parseJepsenLog(text: string): History {
  const events = linesOf(text).map(({ line, lineNumber }): Event => {
    const match = JEPSEN_LINE.exec(line);
    if (match === null) throw new HistoryParseError(lineNumber, line, 'not a jepsen.util operation line');
    const [, process, type, f, valueText] = match;
    const value = readValue(valueText, lineNumber, line);
    return { lineNumber, line, process: Number(process), type: eventType(type, lineNumber, line), f, key: JEPSEN_REGISTER_KEY, value };
  });
  return assemble(events, registerModel);
}

export function parseEdnHistory(text: string): History {
  const events = linesOf(text).map(({ line, lineNumber }): Event => {
    const map = readValue(line, lineNumber, line);
    if (!(map instanceof Map)) throw new HistoryParseError(lineNumber, line, 'expected an EDN map');
    const field = (name: string): EdnValue => {
      const value = map.get(name);
      if (value === undefined) throw new HistoryParseError(lineNumber, line, `missing :${name}`);
      return value;
    };
    const [process, type, f, key] = [field('process'), field('type'), field('f'), field('key')];
    if (typeof process !== 'number' && typeof process !== 'string') throw new HistoryParseError(lineNumber, line, ':process is not a number or string');
    if (!(type instanceof Keyword) || !(f instanceof Keyword)) throw new HistoryParseError(lineNumber, line, ':type and :f must be keywords');
    if (typeof key !== 'string') throw new HistoryParseError(lineNumber, line, ':key is not a string');
    return { lineNumber, line, process, type: eventType(type.name, lineNumber, line), f: f.name, key, value: field('value') };
  });
  return assemble(events, courseKvModel);
}

function linesOf(text: string): { line: string; lineNumber: number }[] {
  return text
    .split('\n')
    .map((raw, index) => ({ line: raw.replace(/\r$/, ''), lineNumber: index + 1 }))
    .filter(({ line }) => line.trim() !== '');
}

function readValue(text: string, lineNumber: number, line: string): EdnValue {
  try {
    return readEdn(text);
  } catch (error) {
    throw new HistoryParseError(lineNumber, line, (error as Error).message);
  }
}

function eventType(name: string, lineNumber: number, line: string): Event['type'] {
  if (name === 'invoke' || name === 'ok' || name === 'fail' || name === 'info') return name;
  throw new HistoryParseError(lineNumber, line, `unknown :type :${name}`);
}

/**
 * Pairs each invocation with its process's next completion. An invocation the
 * log never completes has an unknown outcome, like an :info one. Operations
 * are numbered in invocation order, the order a reader scans the log in.
 */
function assemble(events: readonly Event[], model: Model): History {
  const operations: Omit<Operation, 'id'>[] = [];
  const pending = new Map<ProcessId, { event: Event; request: Request }>();
  for (const event of events) {
    if (event.type === 'invoke') {
      if (pending.has(event.process)) throw new HistoryParseError(event.lineNumber, event.line, `process ${event.process} invokes while an operation is pending`);
      pending.set(event.process, { event, request: requestOf(event) });
      continue;
    }
    const invoked = pending.get(event.process);
    if (invoked === undefined) throw new HistoryParseError(event.lineNumber, event.line, `process ${event.process} completes nothing`);
    if (invoked.event.f !== event.f) throw new HistoryParseError(event.lineNumber, event.line, `completes :${event.f} but :${invoked.event.f} was invoked`);
    pending.delete(event.process);
    operations.push({ process: event.process, request: invoked.request, invokeTime: invoked.event.lineNumber, ...completionOf(invoked.request, event) });
  }
  for (const { event, request } of pending.values()) {
    operations.push({ process: event.process, request, invokeTime: event.lineNumber, status: 'unknown', result: undefined, returnTime: Infinity });
  }
  operations.sort((a, b) => a.invokeTime - b.invokeTime);
  return historyOf(model, operations);
}

function requestOf(event: Event): Request {
  const { f, key, value } = event;
  const bad = (reason: string): never => {
    throw new HistoryParseError(event.lineNumber, event.line, reason);
  };
  switch (f) {
    case 'read':
    case 'get':
      return { kind: 'get', key };
    case 'write':
    case 'put':
      return { kind: 'put', key, value: isValue(value) ? value : bad(`:${f} needs a value`) };
    case 'append':
      return { kind: 'append', key, value: typeof value === 'string' ? value : bad(':append needs a string') };
    case 'cas':
      if (!Array.isArray(value) || value.length !== 2 || !isValue(value[0]) || !isValue(value[1])) return bad(':cas needs [from to]');
      return { kind: 'cas', key, expected: value[0], value: value[1] };
    default:
      return bad(`unknown :f :${f}`);
  }
}

/**
 * How an operation ended. A failed cas is an answer, not a no-op: Jepsen's etcd
 * client reports "compare failed" as :fail, which says the register did not
 * hold `from` (Porcupine reads these logs the same way).
 */
function completionOf(request: Request, completion: Event): { status: Status; result: Result; returnTime: number } {
  const returnTime = completion.lineNumber;
  if (completion.type === 'info') return { status: 'unknown', result: undefined, returnTime: Infinity };
  if (completion.type === 'fail') return request.kind === 'cas' ? { status: 'ok', result: false, returnTime } : { status: 'fail', result: undefined, returnTime };
  if (request.kind === 'cas') return { status: 'ok', result: true, returnTime };
  if (request.kind !== 'get') return { status: 'ok', result: undefined, returnTime };
  if (!isValue(completion.value)) throw new HistoryParseError(completion.lineNumber, completion.line, 'a read returns a value');
  return { status: 'ok', result: completion.value, returnTime };
}

function isValue(value: EdnValue): value is Value {
  return value === null || typeof value === 'string' || typeof value === 'number';
}
