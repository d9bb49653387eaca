import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../cluster/local-cluster.js';
import { pollUntil } from './chaos-cluster.js';
import { readFullHistory } from './history-checks.js';
import { call, newAgent, probe } from './http.js';
import { MemberProcess } from './member-process.js';

// A damaged data file must make a member refuse to start with a clear message,
// never serve wrong data. One member, so nothing can be repaired from a peer:
// whatever it serves comes from its own files. Values are random base64 text,
// which LevelDB's compression cannot shrink, so tables hold them as they are
// (a flipped byte is not caught by a failing decompression).

const WRITES = 600;
const KEYS = 50;

interface Damage {
  readonly name: string;
  /** Damages the LevelDB directory; returns what it did (for the failure message). */
  readonly apply: (db: string) => Promise<string>;
}

async function newest(db: string, suffix: string): Promise<string> {
  const files = (await readdir(db)).filter((f) => f.endsWith(suffix)).sort();
  if (files.length === 0) throw new Error(`no ${suffix} file in ${db}: ${(await readdir(db)).join(' ')}`);
  return files[files.length - 1];
}

async function flip(db: string, file: string, fraction: number): Promise<string> {
  const path = join(db, file);
  const bytes = await readFile(path);
  const at = Math.floor(bytes.length * fraction);
  bytes[at] ^= 0x5a;
  await writeFile(path, bytes);
  return `flipped byte ${at} of ${file} (${bytes.length} bytes)`;
}

async function cut(db: string, file: string, fraction: number): Promise<string> {
  const size = (await stat(join(db, file))).size;
  await truncate(join(db, file), Math.floor(size * fraction));
  return `truncated ${file} from ${size} to ${Math.floor(size * fraction)} bytes`;
}

const DAMAGES: readonly Damage[] = [
  { name: 'the write-ahead log cut in half', apply: async (db) => cut(db, await newest(db, '.log'), 0.5) },
  { name: 'the write-ahead log missing its last tenth', apply: async (db) => cut(db, await newest(db, '.log'), 0.9) },
  { name: 'a flipped byte in the middle of the write-ahead log', apply: async (db) => flip(db, await newest(db, '.log'), 0.5) },
  { name: 'a flipped byte near the end of the write-ahead log', apply: async (db) => flip(db, await newest(db, '.log'), 0.97) },
  { name: 'a table cut in half', apply: async (db) => cut(db, await newest(db, '.ldb'), 0.5) },
  ...[0.15, 0.5, 0.85].map((at) => ({ name: `a flipped byte ${at * 100}% into a table`, apply: async (db: string) => flip(db, await newest(db, '.ldb'), at) })),
  { name: 'a truncated MANIFEST', apply: async (db) => cut(db, (await readdir(db)).find((x) => x.startsWith('MANIFEST-'))!, 0.5) },
  { name: 'a flipped byte in the MANIFEST', apply: async (db) => flip(db, (await readdir(db)).find((x) => x.startsWith('MANIFEST-'))!, 0.5) },
  { name: 'CURRENT naming a missing MANIFEST', apply: async (db) => (await writeFile(join(db, 'CURRENT'), 'MANIFEST-999999\n'), 'CURRENT -> MANIFEST-999999') },
  { name: 'CURRENT deleted', apply: async (db) => (await unlink(join(db, 'CURRENT')), 'deleted CURRENT') },
];

describe('a member on damaged data refuses to start, never serves wrong data', () => {
  let dir: string;
  let pristine: string;
  const agent = newAgent();
  /** Every value written, by revision (revision r wrote key k{(r-1) % KEYS}). */
  const written: string[] = [];
  const ports = { client: 0, peer: 0 };

  function member(dataDir: string): MemberProcess {
    const client = `http://127.0.0.1:${ports.client}`;
    const peer = `http://127.0.0.1:${ports.peer}`;
    return new MemberProcess('n1', () => [
      'serve', '--name', 'n1', '--data-dir', dataDir, '--listen-client-urls', client, '--listen-peer-urls', peer,
      '--initial-cluster', `n1=${peer}`, '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn',
    ]);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-corrupt-'));
    pristine = join(dir, 'pristine');
    ports.client = await freePort();
    ports.peer = await freePort();
    const m = member(pristine);
    m.start();
    try {
      const url = `http://127.0.0.1:${ports.client}`;
      await pollUntil('the member to be ready', 20_000, async () => ((await probe(`${url}/readyz`, { timeoutMs: 1000, agent }))?.status === 200 ? true : undefined));
      for (let i = 0; i < WRITES; i++) {
        const value = randomBytes(7500).toString('base64');
        const answer = await call(`${url}/v1/kv/k${i % KEYS}`, { method: 'PUT', body: value, timeoutMs: 10_000, agent });
        expect(answer.status).toBe(200);
        written.push(value);
      }
    } finally {
      // kill -9: whatever is on disk now is what an acknowledged write left there.
      await m.kill('SIGKILL');
    }
    const files = await readdir(join(pristine, 'db'));
    expect(files.some((f) => f.endsWith('.ldb'))).toBe(true);
    expect(files.some((f) => f.endsWith('.log'))).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await agent.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts a member on a copy of the data; resolves with how it ended up. */
  async function startOn(dataDir: string): Promise<{ refused: false } | { refused: true; message: string }> {
    const m = member(dataDir);
    m.start();
    const url = `http://127.0.0.1:${ports.client}`;
    try {
      const ready = await pollUntil('the member to be ready or gone', 20_000, async () => {
        if (!m.running) return 'exited' as const;
        return (await probe(`${url}/readyz`, { timeoutMs: 1000, agent }))?.status === 200 ? ('ready' as const) : undefined;
      });
      if (ready === 'exited') return { refused: true, message: m.logs.join('\n') };
      return { refused: false };
    } finally {
      if (m.running) await m.kill('SIGKILL');
    }
  }

  /** What a started member serves, against what was written: an empty list when it is all right. */
  async function wrongData(dataDir: string): Promise<string[]> {
    const m = member(dataDir);
    m.start();
    const url = `http://127.0.0.1:${ports.client}`;
    const wrong: string[] = [];
    try {
      await pollUntil('the member to be ready', 20_000, async () => ((await probe(`${url}/readyz`, { timeoutMs: 1000, agent }))?.status === 200 ? true : undefined));
      const status = await call(`${url}/v1/status`, { timeoutMs: 5000, agent });
      if (status.body.revision !== WRITES) wrong.push(`revision ${status.body.revision}, ${WRITES} writes were acknowledged`);
      const history = await readFullHistory(url, Math.min(WRITES, status.body.revision as number), agent, 30_000).catch((error: Error) => {
        wrong.push(`history unreadable: ${error.message}`);
        return [];
      });
      for (const e of history) {
        if (e.kv.value !== written[e.revision - 1] || e.kv.key !== `k${(e.revision - 1) % KEYS}`) wrong.push(`revision ${e.revision}: ${e.kv.key} holds a value that was never written there`);
      }
      const live = await call(`${url}/v1/kv/?prefix=true`, { timeoutMs: 10_000, agent });
      const kvs = (live.body.kvs as { key: string; value: string }[] | undefined) ?? [];
      for (let k = 0; k < KEYS; k++) {
        const want = written[WRITES - KEYS + k];
        const got = kvs.find((kv) => kv.key === `k${k}`)?.value;
        if (got !== want) wrong.push(`k${k} reads ${got === undefined ? live.status : 'a wrong value'}`);
      }
      return wrong;
    } finally {
      await m.kill('SIGKILL');
    }
  }

  it('the undamaged copy starts and serves exactly what was written (the check can pass)', async () => {
    const copy = join(dir, 'undamaged');
    await cp(pristine, copy, { recursive: true });
    expect(await startOn(copy)).toEqual({ refused: false });
    expect(await wrongData(copy)).toEqual([]);
  }, 60_000);

  for (const damage of DAMAGES) {
    it(`${damage.name}: refused with a clear message, or served exactly right`, async () => {
      const copy = join(dir, damage.name.replace(/\W+/g, '-'));
      await cp(pristine, copy, { recursive: true });
      const what = await damage.apply(join(copy, 'db'));
      const first = await startOn(copy);
      if (first.refused) {
        const message = first.message.split('\n').filter((line) => line.startsWith('cairn:')).join('\n');
        console.log(`${damage.name} (${what}): refused: ${message}`);
        // One line that says what is wrong and where, not a bare "failed to open".
        expect(message, `${what}; the member said:\n${first.message}`).toMatch(/^cairn: .*(damaged|corrupt|truncated|missing|gap|rolled back)/im);
        // And it keeps refusing: a second start must not find the damage "repaired" by the first.
        const second = await startOn(copy);
        expect(second.refused, `${what}: the second start came up after the first refused`).toBe(true);
        return;
      }
      const wrong = await wrongData(copy);
      console.log(`${damage.name} (${what}): started; ${wrong.length === 0 ? 'served exactly what was written' : `served wrong data: ${wrong.slice(0, 3).join('; ')}`}`);
      expect(wrong, `${what}: the member started and served`).toEqual([]);
    }, 60_000);
  }
});
