import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeMessage, type Message } from '../../../src/raft/index.js';
import { encodeMessages } from '../../../src/transport/codec.js';
import { SnapshotTooLargeError } from '../../../src/transport/errors.js';
import { HEADER_MESSAGE, MESSAGES_PATH, SNAPSHOT_PATH } from '../../../src/transport/peer-protocol.js';
import { peerRoutes } from '../../../src/transport/peer-routes.js';
import { A, B, C, WARN, app, captureLogs, snap, type LogLine } from './helpers.js';

const TOKEN = 'test-cluster';

describe('peer routes', () => {
  let server: FastifyInstance;
  let lines: LogLine[];
  let delivered: Message[][];
  let snapshots: { message: Message; bytes: Buffer }[];
  let snapshotFailure: Error | undefined;

  beforeEach(async () => {
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
  const postMessages = (payload: Uint8Array | string, overrides: Record<string, string | undefined> = {}) =>
    server.inject({ method: 'POST', url: MESSAGES_PATH, headers: headers(overrides), payload: Buffer.from(payload) });
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
});
