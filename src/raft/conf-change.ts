import { assert } from './assert.js';
import type { ConfChange, ConfChangeType, NodeId } from './types.js';

// A conf change travels in a log entry's data. JSON keeps it readable in a log
// dump and needs nothing outside the core; it is tiny and rare.
const TYPES: ReadonlySet<ConfChangeType> = new Set(['addNode', 'addLearner', 'removeNode']);

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const context = cc.context ? Array.from(cc.context) : undefined;
  return new TextEncoder().encode(JSON.stringify({ type: cc.type, nodeId: cc.nodeId, context }));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const raw = JSON.parse(new TextDecoder().decode(data)) as { type: ConfChangeType; nodeId: string; context?: number[] };
  assert(TYPES.has(raw.type) && typeof raw.nodeId === 'string' && raw.nodeId !== '', 'malformed conf change entry');
  const nodeId = raw.nodeId as NodeId;
  return raw.context ? { type: raw.type, nodeId, context: Uint8Array.from(raw.context) } : { type: raw.type, nodeId };
}
