import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { Client, TimeoutError, type WatchBatch } from '../../src/client/index.js';
import { waitFor } from '../support/wait-for.js';

// The client library and the CLI against real member processes that die under
// them (kill -9): a watch resumes on another member without missing or repeating
// an event, and a write in flight during a leader crash is reported as success,
// failure or Timeout (unknown), never wrongly.

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

describe('clients through member crashes (real processes)', () => {
  let dir: string;
  let cluster: LocalCluster;
  let writer: Client;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-faults-'));
    cluster = await LocalCluster.create({
      size: 3,
      dir,
      clientPort: 0,
      peerPort: 0,
      extraFlags: ['--heartbeat-interval', '50', '--election-timeout', '500', '--snapshot-count', '100', '--log-level', 'warn'],
      onLine: () => {},
    });
    await cluster.start();
    await cluster.waitReady(30_000);
    writer = new Client({ endpoints: cluster.clientUrls, timeoutMs: 3000 });
  }, 60_000);

  afterAll(async () => {
    await writer?.close();
    await cluster?.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  /** Finds the member index whose status says it leads, asking each member directly. */
  async function leader(): Promise<number> {
    return waitFor('a leader', async () => {
      for (const [i, m] of cluster.members.entries()) {
        if (!m.process) continue;
        const res = await fetch(`${m.clientUrl}/v1/status`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        const body = (await res?.json().catch(() => undefined)) as { leaderId?: string; memberId?: string } | undefined;
        if (body?.leaderId && body.leaderId === body.memberId) return i;
      }
      return undefined;
    });
  }

  /** Writes `count` keys under `prefix` through the members other than `skip`, returning the revisions acknowledged. */
  async function writeSome(prefix: string, from: number, count: number, skip: number): Promise<number[]> {
    const others = cluster.members.filter((_, i) => i !== skip).map((m) => m.clientUrl);
    const client = new Client({ endpoints: others, timeoutMs: 5000 });
    try {
      const revisions: number[] = [];
      for (let i = from; i < from + count; i++) revisions.push((await client.put(`${prefix}${i}`, `v${i}`)).header.revision);
      return revisions;
    } finally {
      await client.close();
    }
  }

  it('a client watch survives kill -9 of its member: every event once, in order, none missing', async () => {
    const victim = (await leader() + 1) % 3; // a follower: the cluster keeps its leader, the watch must move
    const endpoints = [victim, (victim + 1) % 3, (victim + 2) % 3].map((i) => cluster.members[i].clientUrl);
    const watcher = new Client({ endpoints, timeoutMs: 3000, watchIdleTimeoutMs: 2000 });
    const stop = new AbortController();
    const start = (await writer.status()).revision + 1;
    const seen: { revision: number; key: string }[] = [];
    const watching = (async () => {
      for await (const batch of watcher.watch('wk/', { prefix: true, startRevision: start, signal: stop.signal }) as AsyncIterable<WatchBatch>) {
        for (const ev of batch.events) seen.push({ revision: batch.revision, key: ev.kv.keyText() });
      }
    })();
    try {
      const before = await writeSome('wk/', 0, 20, victim);
      await waitFor('the first events', async () => (seen.length >= 20 ? true : undefined));
      await cluster.stopMember(cluster.members[victim].name, 'SIGKILL');
      const after = await writeSome('wk/', 20, 30, victim);
      await waitFor('every event after the crash', async () => (seen.length >= 50 ? true : undefined), 30_000);
      const all = [...before, ...after];
      expect(seen.map((e) => e.revision)).toEqual(all);
      expect(seen.map((e) => e.key)).toEqual(all.map((_, i) => `wk/${i}`));
    } finally {
      stop.abort();
      await watching.catch(() => undefined);
      await watcher.close();
      await cluster.startMember(cluster.members[victim].name);
    }
  }, 90_000);

  it('cairn watch -o json resumes by itself when its member is killed, and ends cleanly on SIGINT', async () => {
    await cluster.waitReady(30_000);
    const victim = (await leader() + 2) % 3;
    const endpoints = [victim, (victim + 1) % 3, (victim + 2) % 3].map((i) => cluster.members[i].clientUrl).join(',');
    const start = (await writer.status()).revision + 1;
    const child = spawn(process.execPath, [CLI, '--endpoints', endpoints, '-o', 'json', 'watch', 'cw/', '--prefix', '--rev', String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const lines = (): { revision: number; key: string }[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { revision: number; key: string });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const before = await writeSome('cw/', 0, 10, victim);
      await waitFor('the CLI to print the first events', async () => (lines().length >= 10 ? true : undefined));
      await cluster.stopMember(cluster.members[victim].name, 'SIGKILL');
      const after = await writeSome('cw/', 10, 10, victim);
      await waitFor('the CLI to print the events after the crash', async () => (lines().length >= 20 ? true : undefined), 30_000);
      expect(lines().map((l) => l.revision)).toEqual([...before, ...after]);
      expect(lines().map((l) => l.key)).toEqual([...before, ...after].map((_, i) => `cw/${i}`));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await cluster.startMember(cluster.members[victim].name);
    }
  }, 90_000);

  it('writes in flight while the leader is killed: each is success, failure or Timeout, and the store agrees', async () => {
    await cluster.waitReady(30_000);
    const old = await leader();
    // The leader first, so the writes are in flight on the member that dies.
    const endpoints = [old, (old + 1) % 3, (old + 2) % 3].map((i) => cluster.members[i].clientUrl);
    const client = new Client({ endpoints, timeoutMs: 2000 });
    const outcomes = new Map<string, 'ok' | 'failed' | 'unknown'>();
    let stopWriting = false;
    const workers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stopWriting && i < 500; i++) {
        const key = `crash/${w}/${i}`;
        try {
          await client.put(key, `${w}:${i}`);
          outcomes.set(key, 'ok');
        } catch (err) {
          outcomes.set(key, err instanceof TimeoutError ? 'unknown' : 'failed');
        }
      }
    });
    try {
      await waitFor('some writes before the crash', async () => (outcomes.size >= 40 ? true : undefined));
      await cluster.stopMember(cluster.members[old].name, 'SIGKILL');
      const count = outcomes.size;
      await waitFor('writes to go on after the crash', async () => ([...outcomes.values()].filter((o) => o === 'ok').length > count + 40 ? true : undefined), 30_000);
    } finally {
      stopWriting = true;
      await Promise.all(workers);
      await client.close();
    }
    await cluster.startMember(cluster.members[old].name);
    await cluster.waitReady(30_000);
    // Every member, once caught up, holds every acknowledged write and none that failed.
    const counts = { ok: 0, failed: 0, unknown: 0 };
    for (const outcome of outcomes.values()) counts[outcome]++;
    expect(counts.ok).toBeGreaterThan(80);
    const finalRevision = (await writer.status()).revision;
    for (const m of cluster.members) {
      const reader = new Client({ endpoints: [m.clientUrl], timeoutMs: 3000 });
      try {
        await waitFor(`${m.name} to catch up`, async () => ((await reader.status()).revision >= finalRevision ? true : undefined));
        const stored = new Map((await reader.range('crash/', { serializable: true })).kvs.map((kv) => [kv.keyText(), kv.text()]));
        for (const [key, outcome] of outcomes) {
          const [w, i] = key.split('/').slice(1);
          if (outcome === 'ok') expect(stored.get(key), `${m.name}: acknowledged ${key}`).toBe(`${w}:${i}`);
          if (outcome === 'failed') expect(stored.has(key), `${m.name}: failed ${key}`).toBe(false);
        }
        for (const key of stored.keys()) expect(outcomes.has(key), `${m.name}: ${key} was never written`).toBe(true);
      } finally {
        await reader.close();
      }
    }
    console.log(`writes during a leader crash: ${counts.ok} ok, ${counts.failed} failed, ${counts.unknown} unknown`);
  }, 120_000);
});
