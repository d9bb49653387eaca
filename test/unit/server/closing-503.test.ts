import type { IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startSoloMember } from '../../support/solo-member.js';

// Regression (commit 50748a5): a request that reaches a member while it closes must be
// answered 503 in API.md's error shape, {"error":{"code":"Unavailable","message":…}},
// not with fastify's own 503 body ({"error":"Service Unavailable",…}).
//
// inject() refuses outright once fastify closes, so this goes over a real loopback
// socket: a PUT whose body is held back keeps the connection busy (server.close()
// only drops idle connections), close() starts, then the rest of that body arrives
// with a second request pipelined behind it: the second request arrives while closing.

async function waitFor(what: string, condition: () => boolean, deadlineMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Splits what a socket received into HTTP/1.1 responses (each with a Content-Length, as every answer here has). */
function parseResponses(raw: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', at);
    if (headEnd < 0) throw new Error(`incomplete response head: ${raw.subarray(at).toString()}`);
    const [statusLine, ...lines] = raw.subarray(at, headEnd).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length)) throw new Error(`response without Content-Length: ${statusLine}`);
    const bodyStart = headEnd + 4;
    responses.push({ status: Number(statusLine.split(' ')[1]), headers, body: raw.subarray(bodyStart, bodyStart + length).toString('utf8') });
    at = bodyStart + length;
  }
  return responses;
}

describe('a member that is closing', () => {
  it('answers a request that arrives during close() with 503 Unavailable in the API error shape', async () => {
    const solo = await startSoloMember();
    const app = solo.member.clientApp;
    let socket: Socket | undefined;
    let closing: Promise<void> | undefined;
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      let held: IncomingMessage | undefined;
      app.server.on('request', (request: IncomingMessage) => {
        held ??= request;
      });

      socket = connect(port, '127.0.0.1');
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      let ended = false;
      socket.on('close', () => {
        ended = true;
      });
      socket.on('error', () => undefined);
      // Headers and half the body: the request is in flight, its body parser waiting.
      socket.write('PUT /v1/kv/closing/held HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nab');
      await waitFor('the held request to reach its body parser', () => held?.readableFlowing === true);

      closing = solo.member.close();
      // fastify marks itself closing and runs the preClose hooks before it stops listening.
      await waitFor('the client server to stop listening', () => !app.server.listening);

      socket.write('cd' + 'GET /v1/kv/closing/held HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n');
      await waitFor('the member to answer and close the connection', () => ended);

      const responses = parseResponses(Buffer.concat(received));
      expect(responses, JSON.stringify(responses)).toHaveLength(2);
      const late = responses[1];
      expect(late.status).toBe(503);
      expect(late.headers['content-type']).toContain('application/json');
      const body = JSON.parse(late.body) as { error?: { code?: unknown; message?: unknown } };
      expect(body.error, late.body).toBeTypeOf('object');
      expect(body.error!.code, late.body).toBe('Unavailable');
      expect(body.error!.message, late.body).toBeTypeOf('string');
      expect((body.error!.message as string).length).toBeGreaterThan(0);
      await closing;
    } finally {
      socket?.destroy();
      await closing?.catch(() => undefined);
      await solo.close();
    }
  });
});
