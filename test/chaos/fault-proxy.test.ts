import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { FaultProxy } from './fault-proxy.js';

// The proxy alone, in front of a plain HTTP server that answers every POST with
// its body: each sender keeps its own connection (as cairn's peers do) and names
// itself in x-cairn-from, so faults apply per directed link.

describe('the fault proxy', () => {
  let server: Server;
  let proxy: FaultProxy;
  const agents: Agent[] = [];
  const received: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(`${req.headers['x-cairn-from']}:${Buffer.concat(chunks).toString()}`);
        res.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    proxy = await FaultProxy.start({ targetPort: address.port, listenPort: 0, random: () => 0.5 });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.destroy()));
    await proxy?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  /** A sender with its own kept-alive connection, as a cairn member has. */
  function sender(id: string): (body: string, timeoutMs?: number) => Promise<string> {
    const agent = new Agent({ connections: 1, pipelining: 1 });
    agents.push(agent);
    return async (body, timeoutMs = 2000) => {
      const response = await request(`http://127.0.0.1:${proxy.port}/raft/messages`, {
        method: 'POST',
        body,
        headers: { 'x-cairn-from': id },
        dispatcher: agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return response.body.text();
    };
  }

  it('forwards requests and answers when the link has no fault', async () => {
    const a = sender('a');
    expect(await a('one')).toBe('one');
    expect(await a('two')).toBe('two');
    expect(received).toContain('a:two');
  });

  it('drop breaks only the faulted link: the other sender still gets through', async () => {
    const a = sender('a');
    const b = sender('b');
    expect(await a('before')).toBe('before');
    proxy.setFault('a', { kind: 'drop' });
    await expect(a('dropped')).rejects.toThrow();
    expect(received).not.toContain('a:dropped');
    expect(await b('other link')).toBe('other link');
    proxy.setFault('a', { kind: 'none' });
    expect(await a('healed')).toBe('healed');
  });

  it('blackhole accepts and forwards nothing; healing closes the broken connection so the sender reconnects', async () => {
    const a = sender('hole');
    expect(await a('warm-up')).toBe('warm-up');
    proxy.setFault('hole', { kind: 'blackhole' });
    await expect(a('into the void', 500)).rejects.toThrow();
    expect(received).not.toContain('hole:into the void');
    proxy.heal();
    expect(await a('after')).toBe('after');
  });

  it('delay holds every chunk of the link for the given time', async () => {
    const a = sender('slow');
    expect(await a('warm-up')).toBe('warm-up');
    proxy.setFault('slow', { kind: 'delay', delayMs: 150 });
    const started = performance.now();
    expect(await a('late')).toBe('late');
    // Both the request and the answer are held.
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    proxy.heal();
    const fast = performance.now();
    await a('on time');
    expect(performance.now() - fast).toBeLessThan(150);
  });

  it('flaky breaks connections of the link at the given rate', async () => {
    const a = sender('flaky');
    // The proxy's random source always says 0.5: a rate above it breaks every chunk, one below never.
    proxy.setFault('flaky', { kind: 'flaky', lossRate: 0.6 });
    await expect(a('lost')).rejects.toThrow();
    proxy.setFault('flaky', { kind: 'flaky', lossRate: 0.4 });
    expect(await a('kept')).toBe('kept');
    proxy.heal();
  });
});
