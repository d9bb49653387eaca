// Reads a watch (Server-Sent Events, API.md) from one member: yields each event
// block as it completes. A block cut short by a lost connection is never
// yielded, as an EventSource would not dispatch it.

import { request, type Agent } from 'undici';

export interface WatchKv {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

export type SseNotice =
  | { readonly kind: 'put' | 'delete'; readonly revision: number; readonly kv: WatchKv; readonly prevKv?: WatchKv }
  | { readonly kind: 'progress'; readonly revision: number }
  | { readonly kind: 'compacted'; readonly compactRevision: number }
  | { readonly kind: 'closed'; readonly reason: string };

/** A block bigger than this is not one of ours: the stream is treated as broken. */
const BLOCK_CHARS_MAX = 4 * 1024 * 1024;

export interface WatchRequest {
  readonly clientUrl: string;
  readonly prefix: string;
  readonly prevKv: boolean;
  /** Sent as startRevision (a first connection). */
  readonly startRevision?: number;
  /** Sent as Last-Event-ID (a resumed connection). */
  readonly lastEventId?: number;
  readonly agent: Agent;
  readonly signal: AbortSignal;
  /** The answer's headers must come within this. */
  readonly connectTimeoutMs: number;
}

/** Opens the watch; throws if the member does not answer 200 with an event stream. */
export async function* readWatch(req: WatchRequest): AsyncGenerator<SseNotice> {
  const query = new URLSearchParams({ prefix: 'true' });
  if (req.prevKv) query.set('prevKv', 'true');
  if (req.startRevision !== undefined) query.set('startRevision', String(req.startRevision));
  const headers: Record<string, string> = {};
  if (req.lastEventId !== undefined) headers['last-event-id'] = String(req.lastEventId);
  const response = await request(`${req.clientUrl}/v1/watch/${encodeURIComponent(req.prefix)}?${query}`, {
    headers,
    signal: req.signal,
    dispatcher: req.agent,
    headersTimeout: req.connectTimeoutMs,
    bodyTimeout: 0,
  });
  if (response.statusCode !== 200) {
    const text = await response.body.text().catch(() => '');
    throw new Error(`watch answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
  }
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    buffered += decoder.decode(chunk as Buffer, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const notice = parseBlock(block);
      if (notice) yield notice;
    }
    if (buffered.length > BLOCK_CHARS_MAX) throw new Error('watch stream: a block without an end');
  }
}

/** One SSE block to a notice; comments and unknown events are skipped. */
export function parseBlock(block: string): SseNotice | undefined {
  let id: number | undefined;
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = Number(value);
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return undefined;
  const payload = JSON.parse(data.join('\n')) as Record<string, unknown>;
  switch (event) {
    case 'put':
    case 'delete':
      if (id === undefined || !Number.isSafeInteger(id)) throw new Error(`watch event without a revision id: ${block.slice(0, 200)}`);
      return { kind: event, revision: id, kv: payload.kv as WatchKv, ...(payload.prevKv ? { prevKv: payload.prevKv as WatchKv } : {}) };
    case 'progress':
      return { kind: 'progress', revision: payload.revision as number };
    case 'compacted':
      return { kind: 'compacted', compactRevision: payload.compactRevision as number };
    case 'closed':
      return { kind: 'closed', reason: String(payload.reason) };
    default:
      return undefined;
  }
}
