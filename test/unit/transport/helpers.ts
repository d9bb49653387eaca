// Shared by the transport tests: waiting on conditions, building messages, capturing logs.

import { makeMessage, nodeId, type Entry, type Message, type MessageFields, type NodeId } from '../../../src/raft/index.js';

/** Resolves once `condition` holds; rejects with `what` after `timeoutMs`. Polls: it stands in for an event, not for a delay. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A promise with its resolve exposed, to hold a stream or handler at a known point. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export const A = nodeId('aaaaaaaaaaaaaaaa');
export const B = nodeId('bbbbbbbbbbbbbbbb');
export const C = nodeId('cccccccccccccccc');

export function entry(index: number, term: number, data: Uint8Array | string = `e${index}`): Entry {
  return { index, term, type: 'normal', data: typeof data === 'string' ? new TextEncoder().encode(data) : data };
}

/** An 'app' message whose `index` numbers it, so order can be checked. */
export function app(from: NodeId, to: NodeId, index: number, fields: Partial<MessageFields> = {}): Message {
  return makeMessage({ type: 'app', from, to, term: 1, index, logTerm: 1, commit: index, ...fields });
}

export function snap(from: NodeId, to: NodeId, index: number): Message {
  return makeMessage({
    type: 'snap',
    from,
    to,
    term: 3,
    snapshot: { metadata: { index, term: 2, confState: { voters: [from, to], learners: [] } }, data: new Uint8Array(0) },
  });
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A fastify logger option that keeps every JSON line it writes. */
export function captureLogs(level = 'info'): { lines: LogLine[]; logger: { level: string; stream: { write(line: string): void } } } {
  const lines: LogLine[] = [];
  return { lines, logger: { level, stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } } };
}

export const WARN = 40;
