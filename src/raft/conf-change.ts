import { assert } from './assert.js';
import type { ConfChange, ConfChangeType, NodeId } from './types.js';

// A conf change travels in a log entry's data. JSON keeps it readable in a log
// dump and needs nothing outside the core; it is tiny and rare.
const TYPES: ReadonlySet<ConfChangeType> = new Set(['addNode', 'addLearner', 'removeNode']);

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const context = cc.context ? Array.from(cc.context) : undefined;
  return new TextEncoder().encode(JSON.stringify({ type: cc.type, nodeId: cc.nodeId, context }));
}

/** Whether `data` is a conf change decodeConfChange() accepts: proposals forwarded by peers are checked before they enter the log. */
export function isWellFormedConfChange(data: Uint8Array): boolean {
  try {
    const raw = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown> | null;
    if (typeof raw !== 'object' || raw === null) return false;
    const contextOk = raw.context === undefined || raw.context === null || (Array.isArray(raw.context) && raw.context.every((b) => Number.isInteger(b) && b >= 0 && b <= 255));
    return TYPES.has(raw.type as ConfChangeType) && typeof raw.nodeId === 'string' && raw.nodeId !== '' && contextOk;
  } catch {
    return false;
  }
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const raw = JSON.parse(new TextDecoder().decode(data)) as { type: ConfChangeType; nodeId: string; context?: number[] };
  assert(TYPES.has(raw.type) && typeof raw.nodeId === 'string' && raw.nodeId !== '', 'malformed conf change entry');
  const nodeId = raw.nodeId as NodeId;
  return raw.context ? { type: raw.type, nodeId, context: Uint8Array.from(raw.context) } : { type: raw.type, nodeId };
}
