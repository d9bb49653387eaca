import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';

// `cairn cluster up` as a person runs it: it prints the endpoints and a first
// command once there is a leader, prefixes member log lines with their names,
// reports and restarts a member that dies, stops everything on Ctrl-C (SIGINT,
// exit 0), and comes back with the same data and ports when run again. One
// member keeps it quick; the member processes are found through /proc (Linux).

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

interface Up {
  readonly child: ChildProcess;
  out: string;
  err: string;
  readonly exited: Promise<number | null>;
}

function startUp(args: readonly string[]): Up {
  const child = spawn(process.execPath, [CLI, 'cluster', 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const up: Up = { child, out: '', err: '', exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stdout!.on('data', (c: Buffer) => (up.out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (up.err += c.toString()));
  return up;
}

function cairn(args: readonly string[], endpoints: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--endpoints', endpoints, '--timeout', '3000', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

/** Pids of a process's children (Linux /proc). */
function childrenOf(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

/** Ends an `up` process: SIGINT, then SIGKILL of it and its members if it does not exit in time. */
async function shutDown(up: Up): Promise<number | null> {
  if (up.child.exitCode !== null) return up.child.exitCode;
  const members = childrenOf(up.child.pid!);
  up.child.kill('SIGINT');
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref());
  const result = await Promise.race([up.exited, timeout]);
  if (result !== 'timeout') return result;
  for (const pid of [up.child.pid!, ...members]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  return up.exited;
}

describe.skipIf(process.platform !== 'linux')('cairn cluster up', () => {
  let dir: string;
  const ups: Up[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-up-'));
  });

  afterAll(async () => {
    for (const up of ups) await shutDown(up);
    await rm(dir, { recursive: true, force: true });
  });

  const endpointsOf = (up: Up): string | undefined => /export CAIRN_ENDPOINTS=(\S+)/.exec(up.out)?.[1];

  it('comes up, names its members in their log lines, restarts a dead one, stops on SIGINT and comes back with its data', async () => {
    const first = startUp(['--size', '1', '--dir', dir, '--client-port', '0', '--peer-port', '0', '--max-restarts', '2']);
    ups.push(first);
    const endpoints = await waitFor('the cluster to be up', () => endpointsOf(first));
    expect(first.out).toMatch(/^n1 \| .*member started/m);
    expect(first.out).toMatch(/put greeting hello && .* get greeting/);
    expect(first.out).toContain(`n1  client ${endpoints}`);
    expect(await cairn(['put', 'greeting', 'hello'], endpoints)).toMatchObject({ code: 0 });

    const [member] = childrenOf(first.child.pid!);
    expect(member).toBeGreaterThan(0);
    process.kill(member, 'SIGKILL');
    await waitFor('the death to be reported', () => (/member n1 was killed by SIGKILL; restarting it/.test(first.err) ? true : undefined));
    const back = await waitFor('the member to be back', async () => {
      const r = await cairn(['get', 'greeting', '--print-value-only'], endpoints);
      return r.code === 0 ? r : undefined;
    });
    expect(back.out).toBe('hello\n');
    const restarted = childrenOf(first.child.pid!);
    expect(restarted).toHaveLength(1);
    expect(restarted[0]).not.toBe(member);

    expect(await shutDown(first)).toBe(0);
    expect(first.err).toContain('stopped');
    expect(alive(restarted[0])).toBe(false);

    // Told another size for the same directory: refused, nothing started.
    const wrong = startUp(['--size', '2', '--dir', dir]);
    ups.push(wrong);
    expect(await wrong.exited).toBe(1);
    expect(wrong.err).toContain('holds a cluster of 1 member, not 2');

    const second = startUp(['--dir', dir]);
    ups.push(second);
    expect(await waitFor('the cluster to come back', () => endpointsOf(second))).toBe(endpoints);
    expect(await cairn(['get', 'greeting', '--print-value-only'], endpoints)).toMatchObject({ code: 0, out: 'hello\n' });
    expect(await shutDown(second)).toBe(0);
  }, 90_000);
});
