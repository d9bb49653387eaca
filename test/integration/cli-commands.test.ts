import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../../cluster/local-cluster.js';
import { waitFor } from '../support/wait-for.js';

// The cairn command (the build in dist/) against one real three-member cluster:
// each command's output in simple, json and table form, exit statuses 0/1/2,
// values from stdin, watch until SIGINT, snapshot save and restore into a new
// cluster, and the benchmarks' JSON.

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const FLAGS = ['--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn'];

interface Run {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly out: string;
  readonly err: string;
}

function run(args: readonly string[], options: { input?: string | Buffer; endpoints?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, CAIRN_ENDPOINTS: options.endpoints ?? '' };
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      resolve({ code, stdout, out: stdout.toString('utf8'), err: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** The data rows of a `-o table` output, cells trimmed. */
function tableRows(text: string): string[][] {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  return lines.map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
}

describe('the cairn command against a real cluster', () => {
  let dir: string;
  let cluster: LocalCluster;
  let endpoints: string;
  const cairn = (args: readonly string[], input?: string | Buffer): Promise<Run> => run(args, { input, endpoints });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-cli-'));
    cluster = await LocalCluster.create({ size: 3, dir: join(dir, 'cluster'), clientPort: 0, peerPort: 0, extraFlags: FLAGS, onLine: () => undefined });
    await cluster.start();
    await cluster.waitReady(30_000);
    endpoints = cluster.clientUrls.join(',');
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('put, get and del print etcdctl lines, one JSON document, or a table', async () => {
    // put prints a confirmation, not a list: -o table prints it as simple does.
    expect(await cairn(['-o', 'table', 'put', 'kv/a', 'one'])).toMatchObject({ code: 0, out: 'OK\n' });
    const put = await cairn(['-o', 'json', 'put', 'kv/b', 'two', '--prev-kv']);
    const revision = (JSON.parse(put.out) as { revision: number }).revision;
    expect(revision).toBeGreaterThan(0);

    expect(await cairn(['get', 'kv/a'])).toMatchObject({ code: 0, out: 'kv/a\none\n' });
    expect((await cairn(['get', 'kv/', '--prefix', '--print-value-only'])).out).toBe('one\ntwo\n');
    expect((await cairn(['get', 'kv/', '--prefix', '--keys-only'])).out).toBe('kv/a\nkv/b\n');

    const json = JSON.parse((await cairn(['get', 'kv/', '--prefix', '-o', 'json'])).out) as { revision: number; count: number; more: boolean; kvs: { key: string; value: string; modRevision: number }[] };
    expect(json).toMatchObject({ count: 2, more: false });
    expect(json.revision).toBeGreaterThanOrEqual(revision);
    expect(json.kvs.map((kv) => [kv.key, kv.value])).toEqual([['kv/a', 'one'], ['kv/b', 'two']]);
    expect(json.kvs[1].modRevision).toBe(revision);
    expect(JSON.parse((await cairn(['get', 'kv/b', '-o', 'json'])).out)).toMatchObject({ kv: { key: 'kv/b', value: 'two', modRevision: revision, version: 1 } });

    const table = await cairn(['get', 'kv/', '--prefix', '-o', 'table']);
    const rows = tableRows(table.out);
    expect(rows[0]).toEqual(['KEY', 'VALUE', 'CREATE_REV', 'MOD_REV', 'VERSION', 'LEASE']);
    expect(rows.slice(1)).toEqual([
      ['kv/a', 'one', expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/), '1', '0'],
      ['kv/b', 'two', String(revision), String(revision), '1', '0'],
    ]);

    expect(await cairn(['del', 'kv/nothing'])).toMatchObject({ code: 0, out: '0\n' });
    const delTable = await cairn(['-o', 'table', 'del', 'kv/a', '--prev-kv']);
    expect(delTable.out.split('\n')[0]).toBe('1');
    expect(tableRows(delTable.out).slice(1).map((r) => r.slice(0, 2))).toEqual([['kv/a', 'one']]);
    const del = JSON.parse((await cairn(['-o', 'json', 'del', 'kv/', '--prefix', '--prev-kv'])).out) as { deleted: number; prevKvs: { key: string }[] };
    expect(del).toMatchObject({ deleted: 1, prevKvs: [{ key: 'kv/b', value: 'two' }] });
  });

  it('a value from stdin is stored byte for byte, and comes back so', async () => {
    const value = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13, 0x80, ...Buffer.from('tail')]);
    expect(await cairn(['put', 'bin/blob'], value)).toMatchObject({ code: 0, out: 'OK\n' });
    const back = await cairn(['get', 'bin/blob', '--print-value-only']);
    expect(back.stdout.subarray(0, back.stdout.length - 1)).toEqual(value); // then one newline, as etcdctl
    const json = JSON.parse((await cairn(['get', 'bin/blob', '-o', 'json'])).out) as { kv: { value: string; encoding: string } };
    expect(json.kv.encoding).toBe('base64');
    expect(Buffer.from(json.kv.value, 'base64')).toEqual(value);
  });

  it('exit status: 1 for a missing key or an unreachable endpoint, named; 2 for bad usage', async () => {
    const missing = await cairn(['get', 'no/such/key']);
    expect(missing.code).toBe(1);
    expect(missing.out).toBe('');
    expect(missing.err).toContain('"no/such/key"');
    expect(missing.err).toContain(cluster.clientUrls[0]);

    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await run(['--timeout', '700', 'get', 'k'], { endpoints: nowhere });
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toContain(nowhere);
    expect(unreachable.err).toContain('--endpoints');

    const usages = [['get', 'k', '--no-such-flag'], ['-o', 'yaml', 'get', 'k'], ['get', 'k', '--limit', 'abc'], ['no-such-command'], ['get'], ['--endpoints', 'ftp://x:1', 'get', 'k']];
    for (const [i, usage] of (await Promise.all(usages.map((args) => cairn(args)))).entries()) {
      expect(usage.code, usages[i].join(' ')).toBe(2);
      expect(usage.err, usages[i].join(' ')).not.toBe('');
    }
  });

  it('txn from stdin: SUCCESS or FAILURE (exit 1), JSON, and a malformed one is bad usage', async () => {
    await cairn(['put', 'tx/lock', 'me']);
    const txn = (op: '=' | '!=') => JSON.stringify({ compare: [{ key: 'tx/lock', target: 'value', op, value: 'me' }], success: [{ put: { key: 'tx/won', value: 'yes' } }], failure: [{ get: { key: 'tx/lock' } }] });
    expect(await cairn(['txn'], txn('='))).toMatchObject({ code: 0, out: 'SUCCESS\nOK\n' });
    expect(await cairn(['txn'], txn('!='))).toMatchObject({ code: 1, out: 'FAILURE\ntx/lock\nme\n' });
    const json = JSON.parse((await cairn(['-o', 'json', 'txn'], txn('='))).out) as { succeeded: boolean; revision: number; responses: unknown[] };
    expect(json).toMatchObject({ succeeded: true, responses: [{ put: {} }] });
    const bad = await cairn(['txn'], '{"compare":[{"key":"k","target":"colour","op":"=","value":"red"}]}');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('compare[0].target');
  });

  it('member list, status and endpoint health: one line or row per member, in every format', async () => {
    const names = cluster.members.map((m) => m.name).sort();
    const [simple, json, tableRun] = await Promise.all([[], ['-o', 'json'], ['-o', 'table']].map((format) => cairn(['member', 'list', ...format])));
    expect(simple.out.trim().split('\n').map((l) => l.split(', ')[2]).sort()).toEqual(names);
    const members = (JSON.parse(json.out) as { members: { id: string; name: string; clientUrls: string[]; isLearner: boolean }[] }).members;
    expect(members.map((m) => m.name).sort()).toEqual(names);
    const table = tableRows(tableRun.out);
    expect(table[0]).toEqual(['ID', 'NAME', 'PEER URLS', 'CLIENT URLS', 'LEARNER']);
    expect(table.slice(1).map((r) => [r[0], r[1], r[4]]).sort()).toEqual(members.map((m) => [m.id, m.name, 'false']).sort());

    const [statusSimple, statusJson, statusTableRun] = await Promise.all([[], ['-o', 'json'], ['-o', 'table']].map((format) => cairn(['status', ...format])));
    const status = JSON.parse(statusJson.out) as { endpoint: string; memberId: string; isLeader: boolean; revision: number }[];
    expect(status.map((s) => s.endpoint)).toEqual(cluster.clientUrls);
    expect(status.filter((s) => s.isLeader)).toHaveLength(1);
    const statusTable = tableRows(statusTableRun.out);
    expect(statusTable[0].slice(0, 3)).toEqual(['ENDPOINT', 'ID', 'NAME']);
    expect(statusTable.slice(1).map((r) => r[0])).toEqual(cluster.clientUrls);
    expect(statusSimple.out.trim().split('\n').map((l) => l.split(', ')[0])).toEqual(cluster.clientUrls);

    const health = await cairn(['endpoint', 'health', '-o', 'table']);
    expect(health.code).toBe(0);
    expect(tableRows(health.out).slice(1).map((r) => [r[0], r[1]])).toEqual(cluster.clientUrls.map((u) => [u, 'true']));
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const sick = await run(['--timeout', '700', 'endpoint', 'health', '-o', 'json'], { endpoints: `${cluster.clientUrls[0]},${nowhere}` });
    expect(sick.code).toBe(1);
    expect(JSON.parse(sick.out)).toEqual([expect.objectContaining({ endpoint: cluster.clientUrls[0], health: true }), expect.objectContaining({ endpoint: nowhere, health: false })]);
  });

  it('lease grant, ttl, list and revoke', async () => {
    const grant = JSON.parse((await cairn(['lease', 'grant', '60', '-o', 'json'])).out) as { id: number; ttl: number };
    expect(grant.ttl).toBe(60);
    expect((await cairn(['put', 'leased/k', 'v', '--lease', String(grant.id)])).code).toBe(0);
    expect((await cairn(['lease', 'ttl', String(grant.id), '--keys'])).out).toMatch(new RegExp(`^lease ${grant.id} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\["leased/k"\\]\\)\\n$`));
    const rows = tableRows((await cairn(['lease', 'list', '-o', 'table'])).out);
    expect(rows[0]).toEqual(['ID', 'TTL', 'GRANTED TTL', 'KEYS']);
    expect(rows.find((r) => r[0] === String(grant.id))?.slice(2)).toEqual(['60', '1']);
    expect((await cairn(['lease', 'revoke', String(grant.id)])).out).toBe(`lease ${grant.id} revoked\n`);
    expect((await cairn(['get', 'leased/k'])).code).toBe(1);
    const gone = await cairn(['lease', 'ttl', String(grant.id)]);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain(`lease ${grant.id} not found`);
  });

  it('lease keep-alive reports each keep-alive and keeps the key past its TTL; a revoked lease ends it with status 1', async () => {
    // 3 s: time for the CLI to start on a busy machine before the lease would lapse.
    const grant = JSON.parse((await cairn(['lease', 'grant', '3', '-o', 'json'])).out) as { id: number };
    expect((await cairn(['put', 'kept/k', 'v', '--lease', String(grant.id)])).code).toBe(0);
    const child = spawn(process.execPath, [CLI, '--endpoints', endpoints, 'lease', 'keep-alive', String(grant.id)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // A keep-alive every third of the 3 s TTL: after five of them (more than one TTL), the key must still be there.
      await waitFor('five keep-alives', () => (out.split('\n').filter(Boolean).length >= 5 ? true : undefined)).catch((e: unknown) => { throw new Error(`${String(e)}: out=${out} err=${err}`); });
      expect(out.split('\n')[0]).toBe(`lease ${grant.id} keepalived with TTL(3)`);
      expect((await cairn(['get', 'kept/k'])).code).toBe(0);
      await cairn(['lease', 'revoke', String(grant.id)]);
      expect(await exited).toBe(1);
      expect(err).toContain(`lease ${grant.id} not found`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('watch -o json prints each event as NDJSON as it happens, and SIGINT ends it with status 0', async () => {
    const from = (JSON.parse((await cairn(['status', '-o', 'json'])).out) as { revision: number }[])[0].revision + 1;
    const child = spawn(process.execPath, [CLI, '--endpoints', endpoints, '-o', 'json', 'watch', 'w/', '--prefix', '--rev', String(from)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await cairn(['put', 'w/1', 'first']);
      const first = await waitFor('the first event', () => (out.includes('\n') ? out : undefined));
      expect(JSON.parse(first.split('\n')[0])).toMatchObject({ type: 'put', key: 'w/1', value: 'first', revision: from });
      await cairn(['del', 'w/1']);
      const lines = await waitFor('the second event', () => {
        const l = out.split('\n').filter(Boolean);
        return l.length >= 2 ? l : undefined;
      });
      expect(lines.map((l) => JSON.parse(l) as { type: string; key: string; revision: number })).toMatchObject([
        { type: 'put', key: 'w/1', revision: from },
        { type: 'delete', key: 'w/1', revision: from + 1 },
      ]);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('snapshot save, then restore into three fresh directories: a new cluster with the keys at the snapshot\'s revision', async () => {
    for (let i = 0; i < 5; i++) await cairn(['put', `snap/${i}`, `v${i}`]);
    const file = join(dir, 'backup.snap');
    const saved = JSON.parse((await cairn(['snapshot', 'save', file, '-o', 'json'])).out) as { revision: number; keys: number };
    expect(saved.keys).toBeGreaterThanOrEqual(5);
    const status = JSON.parse((await cairn(['snapshot', 'status', file, '-o', 'json'])).out) as { revision: number; members: string[] };
    expect(status.revision).toBe(saved.revision);
    expect(status.members.sort()).toEqual(cluster.members.map((m) => m.name).sort());

    const restored = await LocalCluster.create({ size: 3, dir: join(dir, 'restored'), clientPort: 0, peerPort: 0, extraFlags: FLAGS, onLine: () => undefined });
    const restore = (m: (typeof restored.members)[number], snapshot = file): Promise<Run> =>
      cairn(['snapshot', 'restore', snapshot, '--name', m.name, '--data-dir', m.dataDir, '--initial-cluster', restored.initialCluster, '--initial-cluster-token', restored.clusterToken, '--initial-advertise-peer-urls', m.peerUrl]);

    // A damaged file: exit 1, and nothing created.
    const cut = join(dir, 'cut.snap');
    await writeFile(cut, (await readFile(file)).subarray(0, 100));
    const damaged = await restore(restored.members[0], cut);
    expect(damaged.code).toBe(1);
    expect(damaged.err).toContain(cut);
    expect((await readdir(join(dir, 'restored'))).filter((n) => n !== 'cluster.json')).toEqual([]);

    for (const m of restored.members) expect((await restore(m)).code, m.name).toBe(0);
    const again = await restore(restored.members[0]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('not empty');
    try {
      await restored.start();
      await restored.waitReady(30_000);
      const other = restored.clientUrls.join(',');
      const got = JSON.parse((await run(['-o', 'json', 'get', 'snap/', '--prefix'], { endpoints: other })).out) as { revision: number; kvs: { key: string; value: string }[] };
      expect(got.revision).toBe(saved.revision);
      expect(got.kvs.map((kv) => [kv.key, kv.value])).toEqual(Array.from({ length: 5 }, (_, i) => [`snap/${i}`, `v${i}`]));
      const members = JSON.parse((await run(['-o', 'json', 'member', 'list'], { endpoints: other })).out) as { members: { id: string; peerUrls: string[] }[] };
      expect(members.members.map((m) => m.peerUrls[0]).sort()).toEqual(restored.members.map((m) => m.peerUrl).sort());
      const after = JSON.parse((await run(['-o', 'json', 'put', 'snap/new', 'x'], { endpoints: other })).out) as { revision: number };
      expect(after.revision).toBe(saved.revision + 1);
    } finally {
      await restored.stop('SIGKILL');
    }
  }, 60_000);

  it('bench put, get and watch -o json report parseable numbers', async () => {
    type Latency = { p50: number; p90: number; p99: number; max: number };
    const check = (latency: Latency): void => {
      expect(latency.p50).toBeGreaterThan(0);
      expect(latency.p50).toBeLessThanOrEqual(latency.p99);
      expect(latency.p99).toBeLessThanOrEqual(latency.max);
    };
    for (const kind of ['put', 'get']) {
      const r = await cairn(['-o', 'json', 'bench', kind, '--clients', '2', '--total', '40', '--value-size', '16']);
      expect(r.code, r.err).toBe(0);
      const result = JSON.parse(r.out) as { kind: string; requests: number; errors: number; perSecond: number; latencyMs: Latency };
      expect(result).toMatchObject({ kind, requests: 40, errors: 0 });
      expect(result.perSecond).toBeGreaterThan(0);
      check(result.latencyMs);
    }
    const w = await cairn(['-o', 'json', 'bench', 'watch', '--watchers', '3', '--clients', '2', '--total', '20']);
    expect(w.code, w.err).toBe(0);
    const watch = JSON.parse(w.out) as { events: number; delivered: number; missing: number; eventsPerSecond: number; latencyMs: Latency };
    expect(watch).toMatchObject({ events: 20, delivered: 60, missing: 0 });
    expect(watch.eventsPerSecond).toBeGreaterThan(0);
    expect(watch.latencyMs.p99).toBeLessThanOrEqual(watch.latencyMs.max);
  }, 60_000);

  it('compact drops history: a read below it fails (exit 1) saying where history starts', async () => {
    const put = JSON.parse((await cairn(['-o', 'json', 'put', 'compact/k', 'v'])).out) as { revision: number };
    expect(await cairn(['compact', String(put.revision)])).toMatchObject({ code: 0, out: `compacted revision ${put.revision}\n` });
    const old = await cairn(['get', 'compact/k', '--rev', String(put.revision - 1)]);
    expect(old.code).toBe(1);
    expect(old.err).toContain(`--rev ${put.revision}`);
  });
});
