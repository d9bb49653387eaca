// What "the state is unchanged" means for a member, read through its client API:
// the Raft position (term, commit, applied, entries persisted), the store (revision,
// compaction, a digest and the full listing of its keys) and its leadership.

import type { FastifyInstance } from 'fastify';

export interface MemberState {
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly leaderId: string | null;
  readonly revision: number;
  readonly compactRevision: number;
  /** /v1/hash of every live key at the current revision. */
  readonly hash: string;
  /** Every key and value (base64), in order, as a range over everything answers. */
  readonly listing: string;
  /** cairn_raft_entries_persisted_total: moves when anything reaches the Raft log. */
  readonly entriesPersisted: number;
}

type Injectable = Pick<FastifyInstance, 'inject'>;

async function json(app: Injectable, url: string): Promise<Record<string, unknown>> {
  const response = await app.inject({ url });
  if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${response.statusCode}: ${response.body}`);
  return JSON.parse(response.body) as Record<string, unknown>;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`metric ${name} missing from /metrics`);
  return Number(line.slice(name.length + 1));
}

/** The member's state; the status and metrics are local reads, the listing is a serializable range. */
export async function memberState(app: Injectable): Promise<MemberState> {
  const status = await json(app, '/v1/status');
  const hash = await json(app, '/v1/hash');
  const range = await json(app, '/v1/kv/?prefix=true&serializable=true&encoding=base64');
  const metrics = (await app.inject({ url: '/metrics' })).body;
  return {
    term: status.term as number,
    commitIndex: status.commitIndex as number,
    appliedIndex: status.appliedIndex as number,
    leaderId: status.leaderId as string | null,
    revision: status.revision as number,
    compactRevision: status.compactRevision as number,
    hash: hash.hash as string,
    listing: JSON.stringify(range.kvs),
    entriesPersisted: metric(metrics, 'cairn_raft_entries_persisted_total'),
  };
}

/**
 * Waits (polling, with a deadline) until the member's own start-up writes are done: it
 * has published its name and client URLs (a conf change it retries until applied) and
 * applied everything committed. From then on nothing changes unless a request does.
 */
export async function waitUntilSettled(app: Injectable, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = (await json(app, '/v1/members')).members as { id: string; clientUrls: string[]; name: string }[];
    const status = await json(app, '/v1/status');
    const self = members.find((m) => m.id === status.memberId);
    if (self !== undefined && self.name !== '' && self.clientUrls.length > 0 && status.appliedIndex === status.commitIndex && status.leaderId !== null) return;
    if (Date.now() > deadline) throw new Error(`member not settled within ${timeoutMs} ms: ${JSON.stringify({ members, status })}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
