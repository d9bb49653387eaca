import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeMessage, type Message } from '../../../src/raft/index.js';
import { encodeMessages } from '../../../src/transport/codec.js';
import { encodeFrame } from '../../../src/transport/frames.js';
import { SnapshotTooLargeError } from '../../../src/transport/errors.js';
import { Packr } from 'msgpackr';
import {
  HEADER_MESSAGE,
  MEMBERSHIP_BODY_BYTES_MAX,
  MEMBERSHIP_PATH,
  MEMBERSHIP_TIMEOUT_MS_MAX,
  MESSAGES_PATH,
  SNAPSHOT_PATH,
  encodeMembershipRequest,
} from '../../../src/transport/peer-protocol.js';
import { peerRoutes } from '../../../src/transport/peer-routes.js';
import type { MembershipChange, MembershipOutcome, MembershipChangeHandler } from '../../../src/transport/transport.js';
import { A, B, C, WARN, app, captureLogs, snap, type LogLine } from './helpers.js';

const TOKEN = 'test-cluster';

describe('peer routes', () => {
  let server: FastifyInstance;
  let lines: LogLine[];
  let delivered: Message[][];
  let snapshots: { message: Message; bytes: Buffer }[];
  let snapshotFailure: Error | undefined;
  let membershipCalls: { from: string; change: MembershipChange; signal: AbortSignal }[];
  let serveMembership: MembershipChangeHandler;

  beforeEach(async () => {
    membershipCalls = [];
    serveMembership = async () => ({ applied: true });
    const logs = captureLogs();
    lines = logs.lines;
    delivered = [];
    snapshots = [];
    snapshotFailure = undefined;
    server = Fastify({ logger: logs.logger });
    await server.register(peerRoutes, {
      selfId: B,
      clusterToken: TOKEN,
      isKnownPeer: (id) => id === A || id === C,
      onMessages: (messages) => void delivered.push([...messages]),
      onSnapshot: async (message, body) => {
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(Buffer.from(chunk));
        if (snapshotFailure !== undefined) throw snapshotFailure;
        snapshots.push({ message, bytes: Buffer.concat(chunks) });
      },
      maxBatchBytes: 64 * 1024,
      maxSnapshotBytes: 1024 * 1024,
      onMembershipChange: (from, change, signal) => {
        membershipCalls.push({ from, change, signal });
        return serveMembership(from, change, signal);
      },
    });
  });
  afterEach(async () => {
    await server.close();
  });

  const headers = (overrides: Record<string, string | undefined> = {}) => {
    const all: Record<string, string | undefined> = {
      'content-type': 'application/octet-stream',
      'x-cairn-cluster': TOKEN,
      'x-cairn-from': A,
      'x-cairn-to': B,
      ...overrides,
    };
    return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined)) as Record<string, string>;
  };
  /** The body as a sender writes it: the payload as one frame (an empty payload: an empty body). */
  const postMessages = (payload: Uint8Array | string, overrides: Record<string, string | undefined> = {}) =>
    postBody(Buffer.from(payload).byteLength === 0 ? Buffer.alloc(0) : encodeFrame(Buffer.from(payload)), overrides);
  const postBody = (body: Buffer, overrides: Record<string, string | undefined> = {}) =>
    server.inject({ method: 'POST', url: MESSAGES_PATH, headers: headers(overrides), payload: body });
  const warnings = () => lines.filter((line) => line.level === WARN);

  function expectRefused(response: { statusCode: number; json(): unknown }, statusCode: number, code: string, logPattern: RegExp): void {
    expect(response.statusCode).toBe(statusCode);
    expect((response.json() as { error: { code: string } }).error.code).toBe(code);
    expect(delivered).toEqual([]);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0].msg).toMatch(logPattern);
  }

  it('hands a valid batch to onMessages in order and answers 204, without per-request info logs', async () => {
    const batch = [app(A, B, 1), app(A, B, 2), makeMessage({ type: 'heartbeat', from: A, to: B, term: 1 })];
    const response = await postMessages(encodeMessages(batch));
    expect(response.statusCode).toBe(204);
    expect(delivered).toEqual([batch]);
    expect(lines).toEqual([]);
  });

  it('refuses a wrong or missing cluster token with 403', async () => {
    expectRefused(await postMessages(encodeMessages([app(A, B, 1)]), { 'x-cairn-cluster': 'other' }), 403, 'PermissionDenied', /cluster token/);
    lines.length = 0;
    expectRefused(await postMessages(encodeMessages([app(A, B, 1)]), { 'x-cairn-cluster': undefined }), 403, 'PermissionDenied', /cluster token/);
  });

  it('refuses an unknown sender with 403', async () => {
    const dId = 'dddddddddddddddd';
    const response = await postMessages(encodeMessages([app(dId as typeof A, B, 1)]), { 'x-cairn-from': dId });
    expectRefused(response, 403, 'PermissionDenied', /not a member/);
    expect(warnings()[0].peer).toBe(dId);
  });

  it('refuses a request addressed to another member with 403', async () => {
    expectRefused(await postMessages(encodeMessages([app(A, C, 1)]), { 'x-cairn-to': C }), 403, 'PermissionDenied', /another member/);
  });

  it('refuses a garbage body with 400', async () => {
    expectRefused(await postMessages('definitely not msgpack'), 400, 'InvalidArgument', /malformed/);
    expect(warnings()[0].detail).toMatch(/not valid msgpack|batch/);
  });

  it('refuses an empty body with 400', async () => {
    expectRefused(await postMessages(new Uint8Array(0)), 400, 'InvalidArgument', /malformed/);
  });

  it('refuses a message whose from or to differs from the envelope', async () => {
    expectRefused(await postMessages(encodeMessages([app(A, B, 1), app(C, B, 2)])), 400, 'InvalidArgument', /malformed/);
    expect(warnings()[0].detail).toMatch(/message 1 is from c+/);
    lines.length = 0;
    expectRefused(await postMessages(encodeMessages([app(A, C, 1)])), 400, 'InvalidArgument', /malformed/);
  });

  it('refuses a snapshot message in a batch', async () => {
    expectRefused(await postMessages(encodeMessages([snap(A, B, 3)])), 400, 'InvalidArgument', /malformed/);
  });

  it('refuses an oversized body with 413', async () => {
    const big = app(A, B, 1, { entries: [{ index: 2, term: 1, type: 'normal', data: new Uint8Array(100 * 1024) }] });
    expectRefused(await postMessages(encodeMessages([big])), 413, 'TooLarge', /larger than allowed/);
  });

  it('hands on every frame of a body, in order, and answers 204 once at its end', async () => {
    const batches = [[app(A, B, 1)], [app(A, B, 2), app(A, B, 3)], [makeMessage({ type: 'heartbeat', from: A, to: B, term: 1 })]];
    const response = await postBody(Buffer.concat(batches.map((batch) => encodeFrame(encodeMessages(batch)))));
    expect(response.statusCode).toBe(204);
    expect(delivered).toEqual(batches);
  });

  it('refuses a bad frame after good ones: the good ones were taken, nothing of the bad one', async () => {
    const good = encodeFrame(encodeMessages([app(A, B, 1)]));
    const response = await postBody(Buffer.concat([good, encodeFrame(Buffer.from('not msgpack')), good]));
    expect(response.statusCode).toBe(400);
    expect(delivered).toEqual([[app(A, B, 1)]]);
    expect(warnings()[0].detail).toMatch(/^frame 1:/);
  });

  it('refuses a body that ends inside a frame, having taken the whole frames before it', async () => {
    const good = encodeFrame(encodeMessages([app(A, B, 1)]));
    const cut = encodeFrame(encodeMessages([app(A, B, 2)])).subarray(0, 7);
    const response = await postBody(Buffer.concat([good, cut]));
    expect(response.statusCode).toBe(400);
    expect(delivered).toEqual([[app(A, B, 1)]]);
    expect(warnings()[0].detail).toMatch(/ends inside frame 1/);
  });

  it('refuses a frame whose length is past the limit with 413, before its bytes arrive', async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(100 * 1024 * 1024);
    expectRefused(await postBody(header), 413, 'TooLarge', /larger than allowed/);
  });

  it('refuses another content type with 415', async () => {
    const response = await server.inject({ method: 'POST', url: MESSAGES_PATH, headers: headers({ 'content-type': 'application/json' }), payload: '{}' });
    expectRefused(response, 415, 'InvalidArgument', /octet-stream/);
  });

  describe('snapshot', () => {
    const postSnapshot = (message: Message | undefined, body: Buffer, overrides: Record<string, string | undefined> = {}) =>
      server.inject({
        method: 'POST',
        url: SNAPSHOT_PATH,
        headers: headers({
          [HEADER_MESSAGE]: message === undefined ? undefined : Buffer.from(encodeMessages([message])).toString('base64'),
          ...overrides,
        }),
        payload: body,
      });

    it('hands the metadata and the whole body to onSnapshot, then answers 204', async () => {
      const body = Buffer.alloc(300 * 1024, 9);
      const response = await postSnapshot(snap(A, B, 42), body);
      expect(response.statusCode).toBe(204);
      expect(snapshots).toHaveLength(1);
      expect(snapshots[0].message.snapshot?.metadata).toEqual(snap(A, B, 42).snapshot?.metadata);
      expect(snapshots[0].bytes.equals(body)).toBe(true);
    });

    it('refuses a missing or malformed message header with 400', async () => {
      expect((await postSnapshot(undefined, Buffer.alloc(10))).statusCode).toBe(400);
      expect((await postSnapshot(undefined, Buffer.alloc(10), { [HEADER_MESSAGE]: 'bm90IG1zZ3BhY2s=' })).statusCode).toBe(400);
      expect((await postSnapshot(app(A, B, 1), Buffer.alloc(10))).statusCode).toBe(400);
      expect((await postSnapshot(snap(C, B, 1), Buffer.alloc(10))).statusCode).toBe(400);
      expect(snapshots).toEqual([]);
      expect(warnings()).toHaveLength(4);
    });

    it('refuses the wrong cluster before reading the body', async () => {
      const response = await postSnapshot(snap(A, B, 1), Buffer.alloc(10), { 'x-cairn-cluster': 'other' });
      expect(response.statusCode).toBe(403);
      expect(snapshots).toEqual([]);
    });

    it('refuses a body larger than maxSnapshotBytes with 413', async () => {
      const response = await postSnapshot(snap(A, B, 1), Buffer.alloc(2 * 1024 * 1024));
      expect(response.statusCode).toBe(413);
      expect(snapshots).toEqual([]);
      expect(warnings()).toHaveLength(1);
    });

    it('stops a chunked body at maxSnapshotBytes: the handler sees SnapshotTooLargeError, the sender 413', async () => {
      let seen: unknown;
      const limited = Fastify({ logger: false });
      await limited.register(peerRoutes, {
        selfId: B,
        clusterToken: TOKEN,
        isKnownPeer: () => true,
        onMessages: () => {},
        onSnapshot: async (_message, body) => {
          try {
            for await (const chunk of body) void chunk;
          } catch (error) {
            seen = error;
            throw error;
          }
        },
        maxSnapshotBytes: 1000,
      });
      async function* chunks() {
        for (let i = 0; i < 10; i++) yield Buffer.alloc(500, i);
      }
      const { Readable } = await import('node:stream');
      const response = await limited.inject({
        method: 'POST',
        url: SNAPSHOT_PATH,
        headers: headers({ [HEADER_MESSAGE]: Buffer.from(encodeMessages([snap(A, B, 1)])).toString('base64') }),
        payload: Readable.from(chunks()),
      });
      await limited.close();
      expect(response.statusCode).toBe(413);
      expect(seen).toBeInstanceOf(SnapshotTooLargeError);
    });

    it('answers 503 when the handler fails', async () => {
      snapshotFailure = new Error('disk full');
      const response = await postSnapshot(snap(A, B, 1), Buffer.alloc(100));
      expect(response.statusCode).toBe(503);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0].detail).toBe('disk full');
    });
  });

  describe('membership', () => {
    const packr = new Packr({ useRecords: false });
    const promote: MembershipChange = { op: 'promote', memberId: '0123456789abcdef' };
    const postMembership = (payload: Uint8Array | string, overrides: Record<string, string | undefined> = {}) =>
      server.inject({ method: 'POST', url: MEMBERSHIP_PATH, headers: headers(overrides), payload: Buffer.from(payload) });
    function expectMembershipRefused(response: { statusCode: number; json(): unknown }, statusCode: number, code: string, logPattern: RegExp): void {
      expectRefused(response, statusCode, code, logPattern);
      expect(membershipCalls).toEqual([]);
    }

    it('hands a valid request to the handler with its sender and answers 200 with the outcome', async () => {
      const add: MembershipChange = { op: 'add', peerUrls: ['http://127.0.0.1:2410'], learner: true };
      const applied = await postMembership(encodeMembershipRequest(add, 5000));
      expect(applied.statusCode).toBe(200);
      expect(applied.json()).toEqual({ applied: true });
      serveMembership = async () => ({ applied: false, code: 'Unavailable', message: 'not accepted: learner-not-caught-up' });
      const refused = await postMembership(encodeMembershipRequest(promote, 5000));
      expect(refused.statusCode).toBe(200);
      expect(refused.json()).toEqual({ applied: false, error: { code: 'Unavailable', message: 'not accepted: learner-not-caught-up' } });
      expect(membershipCalls.map(({ from, change }) => ({ from, change }))).toEqual([
        { from: A, change: add },
        { from: A, change: promote },
      ]);
      expect(warnings()).toEqual([]);
    });

    it("aborts the handler's signal at the request's timeoutMs, and answers the handler's Timeout", async () => {
      serveMembership = (_from, _change, signal) =>
        new Promise<MembershipOutcome>((resolve) => signal.addEventListener('abort', () => resolve({ applied: false, code: 'Timeout', message: 'not applied in time' })));
      const startedMs = performance.now();
      const response = await postMembership(encodeMembershipRequest(promote, 50));
      const elapsedMs = performance.now() - startedMs;
      expect(response.json()).toEqual({ applied: false, error: { code: 'Timeout', message: 'not applied in time' } });
      expect(membershipCalls[0].signal.aborted).toBe(true);
      expect(elapsedMs).toBeGreaterThanOrEqual(45);
      expect(elapsedMs).toBeLessThan(2000);
    });

    it('answers 500 in the error shape when the handler fails with no outcome', async () => {
      serveMembership = async () => {
        throw new Error('broken');
      };
      const response = await postMembership(encodeMembershipRequest(promote, 5000));
      expect(response.statusCode).toBe(500);
      expect((response.json() as { error: { code: string } }).error.code).toBe('Internal');
    });

    it('refuses the wrong cluster, an unknown sender and another receiver with 403, before the handler', async () => {
      const body = encodeMembershipRequest(promote, 5000);
      expectMembershipRefused(await postMembership(body, { 'x-cairn-cluster': 'other' }), 403, 'PermissionDenied', /cluster token/);
      lines.length = 0;
      expectMembershipRefused(await postMembership(body, { 'x-cairn-from': 'dddddddddddddddd' }), 403, 'PermissionDenied', /not a member/);
      lines.length = 0;
      expectMembershipRefused(await postMembership(body, { 'x-cairn-to': C }), 403, 'PermissionDenied', /another member/);
    });

    it('refuses malformed requests with 400 and a reason', async () => {
      const cases: [string, Uint8Array | string, RegExp][] = [
        ['empty body', new Uint8Array(0), /empty body/],
        ['not msgpack', 'definitely not msgpack', /not valid msgpack/],
        ['not a map', packr.pack(['promote']), /must be a map/],
        ['another version', packr.pack({ version: 2, op: 'promote', memberId: '0123456789abcdef', timeoutMs: 10 }), /version/],
        ['unknown op', packr.pack({ version: 1, op: 'rename', memberId: '0123456789abcdef', timeoutMs: 10 }), /op must be/],
        ['extra field', packr.pack({ version: 1, op: 'promote', memberId: '0123456789abcdef', timeoutMs: 10, force: true }), /unexpected field "force"/],
        ['member id not 16 hex digits', packr.pack({ version: 1, op: 'remove', memberId: 'ABC', timeoutMs: 10 }), /memberId/],
        ['no timeout', packr.pack({ version: 1, op: 'promote', memberId: '0123456789abcdef' }), /timeoutMs/],
        ['timeout past the maximum', packr.pack({ version: 1, op: 'promote', memberId: '0123456789abcdef', timeoutMs: MEMBERSHIP_TIMEOUT_MS_MAX + 1 }), /timeoutMs/],
        ['no peer URLs', packr.pack({ version: 1, op: 'add', peerUrls: [], learner: true, timeoutMs: 10 }), /peerUrls/],
        ['a peer URL that is not one', packr.pack({ version: 1, op: 'add', peerUrls: ['ftp://x:1'], learner: true, timeoutMs: 10 }), /peerUrls\[0\]/],
        ['learner not a boolean', packr.pack({ version: 1, op: 'add', peerUrls: ['http://h:1'], learner: 'yes', timeoutMs: 10 }), /learner/],
      ];
      for (const [what, payload, detail] of cases) {
        lines.length = 0;
        expectMembershipRefused(await postMembership(payload), 400, 'InvalidArgument', /malformed membership request/);
        expect(warnings()[0].detail, what).toMatch(detail);
      }
    });

    it('refuses a body past the limit with 413 and another content type with 415', async () => {
      expectMembershipRefused(await postMembership(Buffer.alloc(MEMBERSHIP_BODY_BYTES_MAX + 1, 0x90)), 413, 'TooLarge', /larger than allowed/);
      lines.length = 0;
      const json = await server.inject({ method: 'POST', url: MEMBERSHIP_PATH, headers: headers({ 'content-type': 'application/json' }), payload: JSON.stringify({ version: 1, op: 'promote', memberId: '0123456789abcdef', timeoutMs: 10 }) });
      expectMembershipRefused(json, 415, 'InvalidArgument', /octet-stream/);
    });

    it('is no route at all without a handler', async () => {
      const bare = Fastify({ logger: false });
      await bare.register(peerRoutes, { selfId: B, clusterToken: TOKEN, isKnownPeer: () => true, onMessages: () => {}, onSnapshot: async () => {} });
      const response = await bare.inject({ method: 'POST', url: MEMBERSHIP_PATH, headers: headers(), payload: Buffer.from(encodeMembershipRequest(promote, 10)) });
      await bare.close();
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: { code: 'InvalidArgument', message: expect.stringMatching(/no such peer route/) } });
    });
  });
});
