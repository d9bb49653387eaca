import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { waitFor, waitForOnePendingWrite } from '../support/wait-for.js';

// Real `cairn serve` processes (from the build in dist/) on free loopback ports,
// with temporary data directories. Shorter timeouts than the defaults keep the
// run quick; the failover test uses the defaults' ratio (election = 10 heartbeats).

interface Kv {
  key: string;
  value: string;
  modRevision: number;
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}


/** Reads SSE events from a stream until `count` put/delete events arrived; returns their ids in order. */
async function readEvents(url: string, headers: Record<string, string>, count: number, controller: AbortController): Promise<number[]> {
  const res = await fetch(url, { headers, signal: controller.signal });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  const ids: number[] = [];
  let buffered = '';
  const deadline = Date.now() + 10_000;
  while (ids.length < count && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += new TextDecoder().decode(value);
    const blocks = buffered.split('\n\n');
    buffered = blocks.pop() ?? '';
    for (const block of blocks) {
      const id = /^id: (\d+)$/m.exec(block);
      if (id && /^event: (put|delete)$/m.test(block)) ids.push(Number(id[1]));
    }
  }
  controller.abort();
  return ids;
}

describe('a three-member cluster of real processes', () => {
  let dir: string;
  let cluster: LocalCluster;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-it-'));
    cluster = await LocalCluster.create({
      size: 3,
      dir,
      clientPort: 0,
      peerPort: 0,
      extraFlags: ['--heartbeat-interval', '50', '--election-timeout', '500', '--snapshot-count', '50', '--log-level', 'warn'],
      onLine: (member, line) => logs.push(`[${member}] ${line}`),
    });
    await cluster.start();
    await cluster.waitReady(30_000);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const url = (i: number, path: string): string => `${cluster.members[i].clientUrl}${path}`;

  async function leaderIndex(): Promise<number> {
    return waitFor('a leader', async () => {
      for (const [i, m] of cluster.members.entries()) {
        if (!m.process) continue;
        const { body } = await call(`${m.clientUrl}/v1/status`);
        if (body.leaderId && body.leaderId === body.memberId) return i;
      }
      return undefined;
    });
  }

  it('writes through any member are read back through any other, linearizably', async () => {
    for (let i = 0; i < 3; i++) {
      const put = await call(url(i, `/v1/kv/app/key-${i}`), { method: 'PUT', body: `value-${i}` });
      expect(put.status).toBe(200);
      for (let j = 0; j < 3; j++) {
        const got = await call(url(j, `/v1/kv/app/key-${i}`));
        expect(got.status).toBe(200);
        expect((got.body.kv as Kv).value).toBe(`value-${i}`);
      }
    }
    const range = await call(url(1, '/v1/kv/app/?prefix=true'));
    expect((range.body.kvs as Kv[]).map((kv) => kv.key)).toEqual(['app/key-0', 'app/key-1', 'app/key-2']);
  });

  it('kill -9 of the leader: a new leader soon, writes go on, the member restarts and catches up', async () => {
    const old = await leaderIndex();
    const killedAt = Date.now();
    await cluster.stopMember(cluster.members[old].name, 'SIGKILL');
    const next = await leaderIndex();
    const electedMs = Date.now() - killedAt;
    expect(next).not.toBe(old);
    expect(electedMs).toBeLessThan(5000);
    // More than --snapshot-count writes while it is down: it must catch up by snapshot.
    for (let i = 0; i < 120; i++) {
      const r = await call(url(next, `/v1/kv/after/${i}`), { method: 'PUT', body: `${i}` });
      expect(r.status).toBe(200);
    }
    await cluster.startMember(cluster.members[old].name);
    const got = await waitFor('the restarted member to catch up', async () => {
      const r = await call(url(old, '/v1/kv/after/?prefix=true&countOnly=true&serializable=true'));
      return r.body.count === 120 ? r : undefined;
    });
    expect(got.body.count).toBe(120);
    // It caught up by a snapshot streamed from the leader, not from the log (compacted away).
    const metrics = await (await fetch(url(old, '/metrics'))).text();
    expect(metrics).toMatch(/^cairn_snapshots_installed_total [1-9]/m);
    // Every acknowledged write is on every member.
    for (let j = 0; j < 3; j++) {
      const r = await call(url(j, '/v1/kv/?prefix=true&countOnly=true&serializable=true'));
      expect(r.body.count).toBe(123);
    }
  }, 60_000);

  it('a watch resumed on another member with Last-Event-ID sees exactly the events after it', async () => {
    const first = new AbortController();
    // Start from the next revision, so the watch sees the writes below however late it is registered.
    const { body: status } = await call(url(0, '/v1/status'));
    const from = (status.revision as number) + 1;
    const before: Promise<number[]> = readEvents(url(0, `/v1/watch/w/?prefix=true&startRevision=${from}`), {}, 3, first);
    const revisions: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(url(i % 3, `/v1/kv/w/${i}`), { method: 'PUT', body: `${i}` });
      revisions.push((r.body.header as { revision: number }).revision);
    }
    const seen = await before;
    // One chunk may carry more than the three asked for (a watch registered late catches
    // up from history in one write): every event seen is the next write's, none twice.
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual(revisions.slice(0, seen.length));
    const resumed = await readEvents(url(1, '/v1/watch/w/?prefix=true'), { 'last-event-id': String(seen[2]) }, 3, new AbortController());
    expect(resumed).toEqual(revisions.slice(3));
  });

  it('every member lists every member with its name and client URL', async () => {
    const want = cluster.members.map((m) => [m.name, m.clientUrl]).sort();
    for (let i = 0; i < 3; i++) {
      await waitFor(`member ${i} to know everyone's client URL`, async () => {
        const { body } = await call(url(i, '/v1/members'));
        const got = (body.members as { name: string; clientUrls: string[] }[]).map((m) => [m.name, m.clientUrls[0]]).sort();
        return JSON.stringify(got) === JSON.stringify(want) ? got : undefined;
      });
    }
  });

  it('a member restarted with only --name, --data-dir and listen URLs rejoins from its data', async () => {
    const m = cluster.members[2];
    await cluster.stopMember(m.name);
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const child = spawn(process.execPath, [main, 'serve', '--name', m.name, '--data-dir', m.dataDir, '--listen-client-urls', m.clientUrl, '--listen-peer-urls', m.peerUrl, '--log-level', 'warn'], { stdio: 'ignore' });
    try {
      // It may have been the leader: write once the others have one.
      const leader = await leaderIndex();
      const before = await call(url(leader, '/v1/kv/restart-check'), { method: 'PUT', body: 'x' });
      const rev = (before.body.header as { revision: number }).revision;
      const got = await waitFor('the restarted member to serve the latest write', async () => {
        const r = await call(url(2, '/v1/kv/restart-check'));
        return r.status === 200 ? r : undefined;
      });
      expect((got.body.kv as Kv).modRevision).toBe(rev);
      const status = await call(url(2, '/v1/status'));
      expect(status.body.leaderId).not.toBeNull();
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await cluster.startMember(m.name);
    }
  }, 30_000);

  it('a member added through the API joins as a learner, catches up, and is promoted', async () => {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const { freePort } = await import('../../cluster/local-cluster.js');
    const clientUrl = `http://127.0.0.1:${await freePort()}`;
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const added = await call(url(0, '/v1/members'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ peerUrls: [peerUrl], learner: true }) });
    expect(added.status).toBe(200);
    const id = (added.body.member as { id: string }).id;
    const initialCluster = [...cluster.members.map((m) => `${m.name}=${m.peerUrl}`), `n4=${peerUrl}`].join(',');
    const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [main, 'serve', '--name', 'n4', '--data-dir', join(dir, 'n4'), '--listen-client-urls', clientUrl, '--listen-peer-urls', peerUrl,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'existing', '--initial-cluster-token', 'cairn-local',
        '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn'],
      { stdio: 'ignore' },
    );
    try {
      const count = (await call(url(0, '/v1/kv/?prefix=true&countOnly=true'))).body.count;
      await waitFor('the new member to catch up', async () => {
        const r = await call(`${clientUrl}/v1/kv/?prefix=true&countOnly=true&serializable=true`);
        return r.body.count === count ? r : undefined;
      });
      const promoted = await waitFor('the promotion to be accepted', async () => {
        const r = await call(url(await leaderIndex(), `/v1/members/${id}/promote`), { method: 'POST' });
        return r.status === 200 ? r : undefined;
      });
      const members = promoted.body.members as { id: string; isLearner: boolean }[];
      expect(members.find((m) => m.id === id)?.isLearner).toBe(false);
      const removed = await call(url(await leaderIndex(), `/v1/members/${id}`), { method: 'DELETE' });
      expect(removed.status).toBe(200);
      expect((removed.body.members as { id: string }[]).map((m) => m.id)).not.toContain(id);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  }, 30_000);

  it('the cairn command: put, get, del, watch, txn, member list; exit status 0, 1, 2', async () => {
    const { execFile } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const env = { ...process.env, CAIRN_ENDPOINTS: cluster.clientUrls.join(',') };
    const cairn = (args: string[], input?: string): Promise<{ code: number; out: string; err: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, [main, ...args], { env, timeout: 15_000 }, (error, out, err) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
        );
        if (input !== undefined) child.stdin?.end(input);
        else child.stdin?.end();
      });
    expect(await cairn(['put', 'cli/a', 'one'])).toMatchObject({ code: 0, out: 'OK\n' });
    expect(await cairn(['put', 'cli/b'], 'from stdin')).toMatchObject({ code: 0 });
    expect(await cairn(['get', 'cli/a'])).toMatchObject({ code: 0, out: 'cli/a\none\n' });
    expect((await cairn(['get', 'cli/', '--prefix', '--print-value-only'])).out).toBe('one\nfrom stdin\n');
    expect((await cairn(['get', 'cli/missing'])).code).toBe(1);
    expect((await cairn(['get', 'x', '--limit', 'abc'])).code).toBe(2);
    expect((await cairn(['no-such-command'])).code).toBe(2);
    const txn = await cairn(['txn'], JSON.stringify({ compare: [{ key: 'cli/a', target: 'value', op: '=', value: 'one' }], success: [{ put: { key: 'cli/c', value: 'three' } }] }));
    expect(txn.code).toBe(0);
    expect(txn.out).toBe('SUCCESS\nOK\n');
    expect((await cairn(['member', 'list'])).out.trim().split('\n')).toHaveLength(3);
    const put = await cairn(['put', 'cli/w', 'watched', '-o', 'json']);
    const revision = JSON.parse(put.out).revision as number;
    // A watch runs until interrupted: this one is ended by its 3 s timeout, after printing the history from `revision`.
    const once = await new Promise<string>((resolve) => {
      execFile(process.execPath, [main, 'watch', 'cli/w', '--rev', String(revision)], { env, timeout: 3000 }, (_e, out) => resolve(out));
    });
    expect(once).toBe('PUT\ncli/w\nwatched\n');
    expect((await cairn(['del', 'cli/', '--prefix'])).out).toBe('4\n');
  }, 60_000);

  it('bad input is refused with the API error shape and changes nothing', async () => {
    const before = await call(url(0, '/v1/status'));
    const bad = await call(url(0, '/v1/kv/x?limit=abc'));
    expect(bad.status).toBe(400);
    expect((bad.body.error as { code: string }).code).toBe('InvalidArgument');
    const missing = await call(url(0, '/v1/kv/definitely-missing'));
    expect(missing.status).toBe(404);
    const after = await call(url(0, '/v1/status'));
    expect(after.body.revision).toBe(before.body.revision);
  });

  it('a write in flight through a follower when the leader is killed is applied once and answered, not left unknown', async () => {
    const old = await leaderIndex();
    const via = (old + 1) % 3;
    // Stopped first, so the forwarded write reaches no running leader; then killed with it.
    const pid = cluster.members[old].process!.pid!;
    process.kill(pid, 'SIGSTOP');
    const started = Date.now();
    const put = fetch(url(via, '/v1/kv/inflight/once'), { method: 'PUT', body: 'v', signal: AbortSignal.timeout(15_000) });
    await waitForOnePendingWrite(cluster.members[via].clientUrl);
    await cluster.stopMember(cluster.members[old].name, 'SIGKILL');
    const answer = await put;
    const tookMs = Date.now() - started;
    expect(answer.status, await answer.text()).toBe(200);
    // A new leader (500 ms election timeout here), then the retry: far from the 10 s request deadline.
    expect(tookMs).toBeLessThan(6_000);
    const got = await call(url(via, '/v1/kv/inflight/once'));
    expect((got.body.kv as Kv & { version: number }).version).toBe(1);
    const metrics = await (await fetch(url(via, '/metrics'))).text();
    expect(metrics).toMatch(/^cairn_proposals_retried_total [1-9]/m);
    await cluster.startMember(cluster.members[old].name);
    const back = await waitFor('the killed member to hold the write', async () => {
      const r = await call(url(old, '/v1/kv/inflight/once?serializable=true'));
      return r.status === 200 ? r : undefined;
    });
    expect((back.body.kv as Kv & { version: number }).version).toBe(1);
  }, 60_000);
});
