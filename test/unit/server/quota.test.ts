import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMember } from '../../../src/server/member.js';
import { startSoloMember, type SoloMember } from '../../support/solo-member.js';

describe('--quota-backend-bytes', () => {
  let solo: SoloMember;
  let member: RunningMember;

  beforeAll(async () => {
    solo = await startSoloMember({ name: 'q', quotaBackendBytes: String(1024 * 1024) });
    member = solo.member;
  });
  afterAll(async () => {
    await solo?.close();
  });

  it('refuses writes with 507 NoSpace past the quota, and still allows deletes', async () => {
    const big = (await import('node:crypto')).randomBytes(700 * 1024); // incompressible
    for (const k of ['a', 'b']) {
      const r = await member.clientApp.inject({ method: 'PUT', url: `/v1/kv/${k}`, payload: big, headers: { 'content-type': 'application/octet-stream' } });
      expect(r.statusCode).toBe(200);
    }
    // The size is sampled every couple of seconds: wait (with a deadline) until writes are refused.
    const deadline = Date.now() + 15_000;
    let last = 0;
    while (Date.now() < deadline) {
      last = (await member.clientApp.inject({ method: 'PUT', url: '/v1/kv/small', payload: 'v' })).statusCode;
      if (last === 507) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last).toBe(507);
    const refused = await member.clientApp.inject({ method: 'PUT', url: '/v1/kv/small', payload: 'v' });
    expect(JSON.parse(refused.body).error.code).toBe('NoSpace');
    expect((await member.clientApp.inject({ method: 'DELETE', url: '/v1/kv/a' })).statusCode).toBe(200);
  }, 30_000);
});
