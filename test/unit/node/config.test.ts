import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.js';
import { memberIdFor, parseServeConfig } from '../../../src/node/config.js';

describe('cairn serve configuration', () => {
  it("defaults to API.md's values", () => {
    const c = parseServeConfig({});
    expect(c.name).toBe('default');
    expect(c.dataDir.endsWith('default.cairn')).toBe(true);
    expect(c.listenClientUrls.map(String)).toEqual(['http://127.0.0.1:2379/']);
    expect(c.initialCluster.get('default')).toEqual(['http://127.0.0.1:2380']);
    expect(c).toMatchObject({ initialClusterState: 'new', initialClusterToken: 'cairn-cluster', heartbeatIntervalMs: 100, electionTimeoutMs: 1000, snapshotCount: 10000, maxRequestBytes: 1572864, quotaBackendBytes: 2147483648, logLevel: 'info' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads a three-member initial cluster', () => {
    const c = parseServeConfig({
      name: 'n2',
      listenPeerUrls: 'http://127.0.0.1:22380',
      initialCluster: 'n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380/',
    });
    expect([...c.initialCluster.keys()]).toEqual(['n1', 'n2', 'n3']);
    expect(c.initialCluster.get('n3')).toEqual(['http://127.0.0.1:32380']);
  });

  it.each([
    [{ heartbeatInterval: 'abc' }, /heartbeat-interval/],
    [{ heartbeatInterval: '100', electionTimeout: '300' }, /at least 5 times/],
    [{ listenClientUrls: 'ftp://x:1' }, /http/],
    [{ listenPeerUrls: 'http://127.0.0.1' }, /needs a port/],
    [{ initialCluster: 'other=http://127.0.0.1:2380' }, /does not name this member/],
    [{ initialClusterState: 'maybe' }, /new or existing/],
    [{ logLevel: 'loud' }, /log-level/],
    [{ name: 'has space' }, /--name/],
  ])('refuses %o with a clear message', (flags, message) => {
    expect(() => parseServeConfig(flags)).toThrow(InvalidArgumentError);
    expect(() => parseServeConfig(flags)).toThrow(message);
  });

  it('member ids: 16 hex digits, the same for the same URLs and token, different across clusters', () => {
    const a = memberIdFor(['http://h:2380'], 't1');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(memberIdFor(['http://h:2380'], 't1')).toBe(a);
    expect(memberIdFor(['http://h:2380'], 't2')).not.toBe(a);
  });
});
