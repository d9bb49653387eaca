import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberIdFor, parseServeConfig } from '../../../src/node/config.js';
import { DataDirNotEmptyError, SnapshotFileError, inspectSnapshot, restoreMember } from '../../../src/node/restore.js';
import { openMember } from '../../../src/server/member.js';
import { startSoloMember, type SoloMember } from '../../support/solo-member.js';

// `cairn snapshot restore` underneath (src/node/restore.ts), in process: a backup
// of a one-member stack, checked, damaged in the ways files get damaged, and
// restored into a new one-member cluster that must serve the same keys at the
// same revision. (The three-member version with real processes is in
// test/integration/cli-commands.test.ts.)

/** Byte offsets where the image's frames end (each is a 4-byte length, then that many bytes). */
function frameEnds(image: Buffer): number[] {
  const ends: number[] = [];
  for (let at = 0; at < image.length; ) {
    at += 4 + image.readUInt32BE(at);
    ends.push(at);
  }
  return ends;
}

describe('snapshot restore', () => {
  let solo: SoloMember;
  let dir: string;
  let image: Buffer;
  let revision: number;
  let file: string;

  beforeAll(async () => {
    solo = await startSoloMember();
    dir = await mkdtemp(join(tmpdir(), 'cairn-restore-'));
    const app = solo.member.clientApp;
    for (let i = 0; i < 20; i++) await app.inject({ method: 'PUT', url: `/v1/kv/app/${i}`, payload: `value-${i}` });
    await app.inject({ method: 'PUT', url: '/v1/kv/bin', payload: Buffer.from([0, 255, 1]) });
    await app.inject({ method: 'DELETE', url: '/v1/kv/app/0' });
    revision = (JSON.parse((await app.inject({ url: '/v1/status' })).body) as { revision: number }).revision;
    image = (await app.inject({ url: '/v1/snapshot' })).rawPayload;
    file = join(dir, 'backup.snap');
    await writeFile(file, image);
  });

  afterAll(async () => {
    await solo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('inspects a backup: revision, keys, the members it came from', async () => {
    const summary = await inspectSnapshot(file);
    expect(summary).toMatchObject({ revision, keys: 20, bytes: image.length });
    expect(summary.members.map((m) => m.name)).toEqual(['solo']);
    expect(summary.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a file cut at a frame boundary, cut mid-frame, empty, or not a snapshot', async () => {
    const ends = frameEnds(image);
    expect(ends.length).toBeGreaterThan(2);
    const cases: [string, Buffer, RegExp][] = [
      ['without its last frame', image.subarray(0, ends[ends.length - 2]), /membership/],
      ['cut mid-frame', image.subarray(0, ends[0] + 10), /middle of a frame/],
      ['empty', Buffer.alloc(0), /empty/],
      ['text', Buffer.from('{"kvs":[]}\n'), /cannot be part of a cairn snapshot|middle of a frame|not a snapshot frame/],
    ];
    for (const [name, bytes, message] of cases) {
      const damaged = join(dir, `damaged-${name.replace(/\W+/g, '-')}`);
      await writeFile(damaged, bytes);
      await expect(inspectSnapshot(damaged), name).rejects.toThrow(SnapshotFileError);
      await expect(inspectSnapshot(damaged), name).rejects.toThrow(message);
    }
  });

  const options = (dataDir: string, snapshotFile = file) => ({
    snapshotFile,
    dataDir,
    name: 'fresh',
    initialCluster: new Map([['fresh', ['http://127.0.0.1:1']]]),
    initialClusterToken: 'restored-token',
    initialAdvertisePeerUrls: ['http://127.0.0.1:1'],
  });

  it('creates nothing from a damaged file, never writes into a directory that is not empty, and fills an empty one', async () => {
    const damaged = join(dir, 'cut.snap');
    await writeFile(damaged, image.subarray(0, image.length - 3));
    const target = join(dir, 'never');
    await expect(restoreMember(options(target, damaged))).rejects.toThrow(SnapshotFileError);
    expect((await readdir(dir)).filter((n) => n.includes('never'))).toEqual([]);

    const occupied = join(dir, 'occupied');
    await mkdir(occupied);
    await writeFile(join(occupied, 'keep.txt'), 'mine');
    await expect(restoreMember(options(occupied))).rejects.toThrow(DataDirNotEmptyError);
    expect(await readdir(occupied)).toEqual(['keep.txt']);

    const empty = join(dir, 'empty');
    await mkdir(empty);
    await restoreMember(options(empty));
    expect(await readdir(empty)).toContain('db');
    expect((await readdir(dir)).filter((n) => n.includes('restoring'))).toEqual([]);
  });

  it('a restored member forms a new cluster with the keys at the backup\'s revision', async () => {
    const dataDir = join(dir, 'fresh');
    const restored = await restoreMember(options(dataDir));
    expect(restored.memberId).toBe(memberIdFor(['http://127.0.0.1:1'], 'restored-token'));
    const config = parseServeConfig({
      name: 'fresh',
      dataDir,
      listenPeerUrls: 'http://127.0.0.1:1',
      heartbeatInterval: '10',
      electionTimeout: '100',
      logLevel: 'error',
    });
    const member = await openMember(config, { listen: false });
    try {
      const deadline = Date.now() + 10_000;
      while ((await member.clientApp.inject({ url: '/readyz' })).statusCode !== 200) {
        if (Date.now() > deadline) throw new Error('the restored member has no leader after 10 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      const range = JSON.parse((await member.clientApp.inject({ url: '/v1/kv/?prefix=true' })).body) as { header: { revision: number }; kvs: { key: string; encoding?: string }[] };
      expect(range.header.revision).toBe(revision);
      const keyText = (kv: { key: string; encoding?: string }): string => (kv.encoding === 'base64' ? Buffer.from(kv.key, 'base64').toString() : kv.key);
      expect(range.kvs.map(keyText).sort()).toEqual([...Array.from({ length: 19 }, (_, i) => `app/${i + 1}`), 'bin'].sort());
      const bin = await member.clientApp.inject({ url: '/v1/kv/bin', headers: { accept: 'application/json' } });
      expect(Buffer.from((JSON.parse(bin.body) as { kv: { value: string } }).kv.value, 'base64')).toEqual(Buffer.from([0, 255, 1]));
      const members = JSON.parse((await member.clientApp.inject({ url: '/v1/members' })).body) as { members: { id: string; name: string }[] };
      expect(members.members).toEqual([expect.objectContaining({ id: restored.memberId, name: 'fresh' })]);
      const put = JSON.parse((await member.clientApp.inject({ method: 'PUT', url: '/v1/kv/after', payload: 'x' })).body) as { header: { revision: number } };
      expect(put.header.revision).toBe(revision + 1);
    } finally {
      await member.close();
    }
  });
});
