import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../cluster/local-cluster.js';
import { Client, ConnectionError, UnauthenticatedError, type ClientOptions } from '../../src/client/index.js';
import { waitFor } from '../support/wait-for.js';

// A three-member cluster of real `cairn serve` processes (the build in dist/)
// with TLS on both listeners: https client URLs with --client-cert-auth, and
// mutual TLS between members. Certificates: test/fixtures/tls (see its README).

const CLI = resolve('dist/cli/main.js');
const FIXTURES = resolve('test/fixtures/tls');
const file = (name: string): string => join(FIXTURES, name);
const pem = (name: string): Buffer => readFileSync(file(name));

const TOKEN = 'cairn-tls-test';
const TIMING = ['--heartbeat-interval', '50', '--election-timeout', '500'];
const CLIENT_TLS = ['--cert-file', file('server.crt'), '--key-file', file('server.key'), '--trusted-ca-file', file('ca.crt'), '--client-cert-auth'];
const PEER_TLS = ['--peer-cert-file', file('server.crt'), '--peer-key-file', file('server.key'), '--peer-trusted-ca-file', file('ca.crt')];
/** What a client with a good certificate trusts and presents. */
const GOOD_CLIENT_TLS = { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') };

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  process?: ChildProcess;
  /** Every line the process wrote (stdout and stderr). */
  readonly lines: string[];
}

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function startServe(member: Member, flags: readonly string[]): void {
  const child = spawn(process.execPath, [CLI, 'serve', '--name', member.name, '--data-dir', member.dataDir, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  member.process = child;
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (buffered + chunk).split('\n');
      buffered = parts.pop() ?? '';
      member.lines.push(...parts);
    });
  }
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs the cairn command to its end (bounded by timeoutMs). */
function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<Exit> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`cairn ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** The JSON log lines of members, parsed (other lines skipped). */
function logRecords(members: readonly Member[]): Array<Record<string, unknown> & { member: string }> {
  const records: Array<Record<string, unknown> & { member: string }> = [];
  for (const m of members) {
    for (const line of m.lines) {
      try {
        records.push({ ...(JSON.parse(line) as Record<string, unknown>), member: m.name });
      } catch {
        // not a log record
      }
    }
  }
  return records;
}

describe('TLS: a three-member cluster with https clients and mutual TLS between members', () => {
  let dir: string;
  const members: Member[] = [];
  const clients: Client[] = [];

  /** A client of one member (so the test knows who answers), closed after the tests. */
  const clientOf = (member: Member, options: Partial<ClientOptions> = {}): Client => {
    const client = new Client({ endpoints: [member.clientUrl], timeoutMs: 3000, ...options });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-tls-it-'));
    for (const name of ['n1', 'n2', 'n3']) {
      members.push({ name, clientUrl: `https://127.0.0.1:${await freePort()}`, peerUrl: `https://127.0.0.1:${await freePort()}`, dataDir: join(dir, name), lines: [] });
    }
    const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of members) {
      startServe(m, [
        '--listen-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', TOKEN,
        '--log-level', 'warn',
        ...TIMING, ...CLIENT_TLS, ...PEER_TLS,
      ]);
    }
    // Ready: every member knows the same leader (which it can only learn over peer TLS).
    await Promise.all(
      members.map((m) => {
        const client = clientOf(m, { tls: GOOD_CLIENT_TLS });
        return waitFor(`${m.name} to have a leader`, async () => ((await client.status()).leaderId ? true : undefined), 30_000);
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(members.map((m) => stop(m.process)));
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('elects one leader and replicates: written through n1, read linearizably through n3', async () => {
    const statuses = await Promise.all(members.map((m) => clientOf(m, { tls: GOOD_CLIENT_TLS }).status()));
    expect(new Set(statuses.map((s) => s.leaderId)).size).toBe(1);
    expect(statuses.map((s) => s.leaderId)).not.toContain(null);

    const value = `over-tls-${Date.now()}`;
    await clientOf(members[0], { tls: GOOD_CLIENT_TLS }).put('tls/replicated', value);
    const kv = await clientOf(members[2], { tls: GOOD_CLIENT_TLS }).get('tls/replicated');
    expect(kv?.text()).toBe(value);
    // Every member applied it: a serializable read answers from the member's own store.
    await waitFor('n2 to apply the write', async () => {
      const local = await clientOf(members[1], { tls: GOOD_CLIENT_TLS }).get('tls/replicated', { serializable: true });
      return local?.text() === value ? true : undefined;
    });
    const peerUrls = (await clientOf(members[1], { tls: GOOD_CLIENT_TLS }).members()).flatMap((m) => m.peerUrls);
    expect(peerUrls.sort()).toEqual(members.map((m) => m.peerUrl).sort());
  });

  it('with --client-cert-auth, a client without a certificate is refused with 401 Unauthenticated (reads and writes)', async () => {
    const anonymous = clientOf(members[1], { tls: { ca: pem('ca.crt') } });
    const read = await anonymous.get('tls/replicated').catch((error: unknown) => error);
    expect(read).toBeInstanceOf(UnauthenticatedError);
    expect((read as Error).message).toMatch(/client certificate signed by the trusted CA .* is required \(no certificate presented\)/);
    // A refused write is a clean failure, never an unknown outcome.
    const write = await anonymous.put('tls/anonymous', 'x').catch((error: unknown) => error);
    expect(write).toBeInstanceOf(UnauthenticatedError);
    expect((write as UnauthenticatedError).outcomeUnknown).toBe(false);
    expect(await clientOf(members[0], { tls: GOOD_CLIENT_TLS }).get('tls/anonymous')).toBeNull();
    // A certificate from another CA is no better than none.
    const stranger = clientOf(members[1], { tls: { ca: pem('ca.crt'), cert: pem('other-server.crt'), key: pem('other-server.key') } });
    await expect(stranger.get('tls/replicated')).rejects.toThrow(UnauthenticatedError);
    await waitFor('n2 to log the refusal', async () =>
      logRecords([members[1]]).some((r) => r.listener === 'client' && /refused a client without a valid certificate/.test(String(r.msg))) ? true : undefined,
    );
  });

  it('a client that trusts the wrong CA fails with a certificate error, and never retries into success', async () => {
    const misled = clientOf(members[0], { tls: { ca: pem('other-ca.crt'), cert: pem('client.crt'), key: pem('client.key') }, timeoutMs: 1500 });
    const error = await misled.get('tls/replicated').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    const causes = (error as ConnectionError).causes;
    expect(causes.length).toBeGreaterThan(0);
    const reasons = causes.map((c) => {
      const chain: string[] = [];
      for (let e: unknown = c.error; e instanceof Error; e = e.cause) chain.push(`${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`);
      return chain.join(' <- ');
    });
    // The member sends its CA along with its certificate (it has one for client certificates): an untrusted root.
    expect(reasons.join('\n')).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  });

  it('a member whose peer certificate comes from another CA cannot join: its messages are refused and the cluster says so', async () => {
    const intruder: Member = { name: 'n4', clientUrl: `https://127.0.0.1:${await freePort()}`, peerUrl: `https://127.0.0.1:${await freePort()}`, dataDir: join(dir, 'n4'), lines: [] };
    // It trusts the cluster's CA (so the refusal is about its own certificate) and claims
    // to be a founder: it campaigns, so it does send to the others.
    const initialCluster = [...members, intruder].map((m) => `${m.name}=${m.peerUrl}`).join(',');
    try {
      startServe(intruder, [
        '--listen-client-urls', intruder.clientUrl,
        '--listen-peer-urls', intruder.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', TOKEN,
        '--log-level', 'warn',
        '--cert-file', file('server.crt'), '--key-file', file('server.key'),
        '--peer-cert-file', file('other-server.crt'), '--peer-key-file', file('other-server.key'), '--peer-trusted-ca-file', file('ca.crt'),
        ...TIMING,
      ]);
      const refusal = await waitFor('a member to log the refused peer', async () =>
        logRecords(members).find((r) => r.listener === 'peer' && /refused a peer without a valid certificate/.test(String(r.msg))),
      );
      expect(refusal.subject).toBe('cairn member of another CA');
      expect(String(refusal.msg)).toContain('--peer-trusted-ca-file');

      const intruderClient = clientOf(intruder, { tls: { ca: pem('ca.crt') } });
      const status = await intruderClient.status();
      expect(status.leaderId).toBeNull();
      expect(await intruderClient.get('tls/replicated', { serializable: true })).toBeNull();
      // The cluster is as it was: three members, all following the same leader.
      const cluster = clientOf(members[0], { tls: GOOD_CLIENT_TLS });
      expect((await cluster.members()).map((m) => m.name).sort()).toEqual(['n1', 'n2', 'n3']);
      await cluster.put('tls/after-intruder', 'still-serving');
    } finally {
      await stop(intruder.process);
    }
  });

  it('the cairn command talks to it with --cacert, --cert and --key (or CAIRN_CACERT, CAIRN_CERT, CAIRN_KEY)', async () => {
    const endpoint = members[1].clientUrl;
    const put = await runCli(['--endpoints', endpoint, '--cacert', file('ca.crt'), '--cert', file('client.crt'), '--key', file('client.key'), 'put', 'tls/cli', 'from-the-cli']);
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    const env = { CAIRN_ENDPOINTS: members[2].clientUrl, CAIRN_CACERT: file('ca.crt'), CAIRN_CERT: file('client.crt'), CAIRN_KEY: file('client.key') };
    const get = await runCli(['get', 'tls/cli', '--print-value-only'], env);
    expect(get.code).toBe(0);
    expect(get.stdout.trim()).toBe('from-the-cli');
  });

  it('the cairn command without --cacert fails clearly (exit 1): it does not trust the certificate', async () => {
    const result = await runCli(['--endpoints', members[1].clientUrl, '--timeout', '1500', '--cert', file('client.crt'), '--key', file('client.key'), 'put', 'tls/untrusted', 'x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/certificate/);
    expect(result.stderr).toContain(members[1].clientUrl);
    expect(await clientOf(members[0], { tls: GOOD_CLIENT_TLS }).get('tls/untrusted')).toBeNull();
  });
});

describe('cairn serve refuses TLS flags that do not match its URLs', () => {
  it.each([
    ['an https client URL without a certificate', ['--listen-client-urls', 'https://127.0.0.1:1'], /--listen-client-urls: https:\/\/127\.0\.0\.1:1 is https:\/\/ but --cert-file and --key-file are not given/],
    ['a certificate with an http client URL', ['--listen-client-urls', 'http://127.0.0.1:1', '--cert-file', file('server.crt'), '--key-file', file('server.key')], /is http:\/\/ but --cert-file and --key-file are given: use https:\/\//],
    ['peer certificates with http peer URLs', ['--listen-peer-urls', 'http://127.0.0.1:1', ...PEER_TLS], /--listen-peer-urls: http:\/\/127\.0\.0\.1:1 is http:\/\/ but --peer-cert-file/],
  ])('%s: exit 2 and a clear message, nothing started', async (_name, flags, message) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'cairn-tls-refused-'));
    try {
      const result = await runCli(['serve', '--data-dir', join(dataDir, 'member'), ...flags]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(existsSync(join(dataDir, 'member'))).toBe(false);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
