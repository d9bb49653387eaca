import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, freePort } from '../../cluster/local-cluster.js';
import { waitFor } from '../support/wait-for.js';

// Membership changes asked of a follower go to the leader over the peer transport
// (POST /raft/membership), as in etcd: the follower answers with the leader's verdict at
// once, not with a Timeout after its deadline. Real `cairn serve` processes (from the
// build in dist/) on free loopback ports, in a temporary directory; a fourth member is
// added as a learner through a follower and first kept stopped, so it cannot catch up.

interface MemberView {
  id: string;
  name: string;
  isLearner: boolean;
}

/** A member's request deadline is 10 s (the client API's default): the client waits longer, to see the member's own answer. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('membership changes through a follower', () => {
  let dir: string;
  let cluster: LocalCluster;
  let learnerProcess: ChildProcess | undefined;
  let learnerId: string;
  let learnerPeerUrl: string;
  let learnerClientUrl: string;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-membership-'));
    cluster = await LocalCluster.create({
      size: 3,
      dir,
      clientPort: 0,
      peerPort: 0,
      extraFlags: ['--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn'],
      onLine: (member, line) => logs.push(`[${member}] ${line}`),
    });
    await cluster.start();
    await cluster.waitReady(30_000);
    learnerPeerUrl = `http://127.0.0.1:${await freePort()}`;
    learnerClientUrl = `http://127.0.0.1:${await freePort()}`;
  }, 60_000);

  afterAll(async () => {
    if (learnerProcess && learnerProcess.exitCode === null && learnerProcess.signalCode === null) {
      const exited = new Promise((resolve) => learnerProcess!.once('exit', resolve));
      learnerProcess.kill('SIGKILL');
      await exited;
    }
    await cluster?.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const clientUrls = (): string[] => [...cluster.clientUrls, ...(learnerProcess ? [learnerClientUrl] : [])];

  /** A founder that is not the leader, by its client URL. */
  async function followerUrl(): Promise<string> {
    return waitFor('a leader and a follower', async () => {
      const statuses = await Promise.all(cluster.clientUrls.map(async (url) => ({ url, body: (await call(`${url}/v1/status`)).body })));
      const leaderId = statuses.map((s) => s.body.leaderId).find((id) => typeof id === 'string');
      if (leaderId === undefined) return undefined;
      return statuses.find((s) => s.body.memberId !== leaderId)?.url;
    });
  }

  async function membersAt(url: string): Promise<MemberView[]> {
    const r = await call(`${url}/v1/members`);
    expect(r.status).toBe(200);
    return (r.body.members as MemberView[]).map(({ id, name, isLearner }) => ({ id, name, isLearner })).sort((a, b) => a.id.localeCompare(b.id));
  }

  it('adds a learner through a follower; promoting it while it is behind is refused at once with the reason, and changes nothing', async () => {
    const follower = await followerUrl();
    const added = await call(`${follower}/v1/members`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ peerUrls: [learnerPeerUrl], learner: true }) });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    learnerId = (added.body.member as MemberView).id;
    // The follower answers once it has applied the change itself: its list already holds the learner.
    expect((added.body.members as MemberView[]).find((m) => m.id === learnerId)?.isLearner).toBe(true);
    // Every founder has published its name, so nothing else changes the lists from here on.
    const settled = await waitFor('every member to list the learner and the founders by name', async () => {
      const lists = await Promise.all(cluster.clientUrls.map(membersAt));
      const complete = lists.every((list) => list.length === 4 && list.filter((m) => m.id !== learnerId).every((m) => m.name !== ''));
      return complete && lists.every((list) => JSON.stringify(list) === JSON.stringify(lists[0])) ? lists[0] : undefined;
    });
    expect(settled.find((m) => m.id === learnerId)?.isLearner).toBe(true);

    // Until the leader's Raft core has also counted the add as applied (a moment after the lists
    // show it), it refuses any other change as conf-change-pending: ask again then.
    let promoted: Awaited<ReturnType<typeof call>>;
    let elapsedMs: number;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const startedMs = Date.now();
      promoted = await call(`${await followerUrl()}/v1/members/${learnerId}/promote`, { method: 'POST' });
      elapsedMs = Date.now() - startedMs;
      const pending = promoted.status === 503 && /conf-change-pending/.test(JSON.stringify(promoted.body));
      if (!pending || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(503);
    const error = promoted.body.error as { code: string; message: string };
    expect(error.code).toBe('Unavailable');
    expect(error.message).toMatch(/learner-not-caught-up/);
    // The leader's verdict, not the follower's 10 s deadline.
    expect(elapsedMs).toBeLessThan(3000);
    for (const url of cluster.clientUrls) expect(await membersAt(url), url).toEqual(settled);
  }, 60_000);

  it('once the learner has caught up, promoting it through a follower succeeds and every member sees a voter', async () => {
    expect(learnerId).toBeDefined();
    const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const initialCluster = [...cluster.members.map((m) => `${m.name}=${m.peerUrl}`), `n4=${learnerPeerUrl}`].join(',');
    learnerProcess = spawn(
      process.execPath,
      [main, 'serve', '--name', 'n4', '--data-dir', join(dir, 'n4'), '--listen-client-urls', learnerClientUrl, '--listen-peer-urls', learnerPeerUrl,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'existing', '--initial-cluster-token', cluster.clusterToken,
        '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn'],
      { stdio: 'ignore' },
    );
    const leaderStatus = (await call(`${cluster.clientUrls[0]}/v1/status`)).body;
    await waitFor('the learner to catch up', async () => {
      const status = (await call(`${learnerClientUrl}/v1/status`)).body;
      return typeof status.appliedIndex === 'number' && status.appliedIndex >= (leaderStatus.commitIndex as number) ? status : undefined;
    });
    // The learner may still trail what was committed meanwhile: the leader refuses (503) until it does not.
    const promoted = await waitFor('the promotion to be accepted', async () => {
      const r = await call(`${await followerUrl()}/v1/members/${learnerId}/promote`, { method: 'POST' });
      if (r.status === 503) expect((r.body.error as { message: string }).message).toMatch(/learner-not-caught-up/);
      else expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.status === 200 ? r : undefined;
    });
    expect((promoted.body.members as MemberView[]).find((m) => m.id === learnerId)?.isLearner).toBe(false);
    for (const url of clientUrls()) {
      const members = await membersAt(url);
      expect(members, url).toHaveLength(4);
      expect(members.find((m) => m.id === learnerId)?.isLearner, url).toBe(false);
    }
  }, 60_000);

  it('removes a member through a follower', async () => {
    expect(learnerId).toBeDefined();
    const follower = await followerUrl();
    const removed = await call(`${follower}/v1/members/${learnerId}`, { method: 'DELETE' });
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect((removed.body.members as MemberView[]).map((m) => m.id)).not.toContain(learnerId);
    for (const url of cluster.clientUrls) {
      const members = await membersAt(url);
      expect(members.map((m) => m.id), url).not.toContain(learnerId);
      expect(members, url).toHaveLength(3);
    }
  }, 60_000);
});
