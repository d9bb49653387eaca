import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { waitForOnePendingWrite } from '../support/wait-for.js';

// SIGTERM to a member whose write cannot finish (no quorum): the member answers the
// write as unknown after its grace period and exits, even though the client keeps
// its connection alive (a closing server would otherwise wait out the keep-alive timeout).

describe('stopping a member with a write in flight', () => {
  let dir: string;
  let cluster: LocalCluster;
  const paused: number[] = [];
  const agent = new Agent({ keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-shutdown-'));
    cluster = await LocalCluster.create({ size: 3, dir, clientPort: 0, peerPort: 0, extraFlags: ['--log-level', 'warn'], onLine: () => {} });
    await cluster.start();
    await cluster.waitReady(30_000);
  }, 40_000);

  afterAll(async () => {
    for (const pid of paused) process.kill(pid, 'SIGCONT');
    await agent.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers the write 504 (outcome unknown) within its grace period and exits, though the client keeps the connection', async () => {
    const statuses = await Promise.all(cluster.clientUrls.map(async (url) => (await (await fetch(`${url}/v1/status`)).json()) as { memberId: string; leaderId: string }));
    const leader = statuses.findIndex((s) => s.leaderId === s.memberId);
    expect(leader).toBeGreaterThanOrEqual(0);
    const target = (leader + 1) % 3;
    const url = cluster.clientUrls[target];
    // The leader and the third member stop answering: the target forwards the write to a
    // leader that cannot commit it, and it waits (up to the 10 s request deadline).
    for (const i of [leader, (leader + 2) % 3]) {
      const pid = cluster.members[i].process!.pid!;
      process.kill(pid, 'SIGSTOP');
      paused.push(pid);
    }
    const put = request(`${url}/v1/kv/shutdown-check`, { method: 'PUT', body: 'v', dispatcher: agent }).then(async (r) => ({ status: r.statusCode, body: (await r.body.json()) as { error: { code: string } } }));
    await waitForOnePendingWrite(url);
    const started = Date.now();
    await cluster.stopMember(cluster.members[target].name, 'SIGTERM', 60_000);
    const tookMs = Date.now() - started;
    const answer = await put;
    expect(answer.status).toBe(504);
    expect(answer.body.error.code).toBe('Timeout');
    // 2 s of grace, then the close itself; the write's own deadline (10 s) and the keep-alive timeout (72 s) are far off.
    expect(tookMs).toBeLessThan(8_000);
  }, 60_000);
});
