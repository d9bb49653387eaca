import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.js';
import { parseServeConfig, type ServeFlags } from '../../../src/node/config.js';
import { loadClientListenerTls, loadPeerTls } from '../../../src/server/tls-options.js';

const FIXTURES = resolve('test/fixtures/tls');
const fixture = (name: string): string => join(FIXTURES, name);

/** A member whose client listener serves TLS, with every URL https://. */
const CLIENT_TLS: ServeFlags = {
  listenClientUrls: 'https://127.0.0.1:2379',
  certFile: fixture('server.crt'),
  keyFile: fixture('server.key'),
};

/** A member with peer TLS and every peer URL https://. */
const PEER_TLS: ServeFlags = {
  name: 'n1',
  listenPeerUrls: 'https://127.0.0.1:2380',
  initialCluster: 'n1=https://127.0.0.1:2380,n2=https://127.0.0.1:2390',
  peerCertFile: fixture('server.crt'),
  peerKeyFile: fixture('server.key'),
  peerTrustedCaFile: fixture('ca.crt'),
};

function refusal(flags: ServeFlags): string {
  try {
    parseServeConfig(flags);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(flags)}`);
}

describe('TLS flags of cairn serve', () => {
  it('without TLS flags both listeners are plain HTTP', () => {
    const config = parseServeConfig({});
    expect(config.clientTls).toBeUndefined();
    expect(config.peerTls).toBeUndefined();
  });

  it('a certificate and key make the client listener TLS, with absolute paths', () => {
    const config = parseServeConfig({ ...CLIENT_TLS, certFile: 'test/fixtures/tls/server.crt' });
    expect(config.clientTls).toEqual({ certFile: fixture('server.crt'), keyFile: fixture('server.key'), trustedCaFile: undefined, clientCertAuth: false });
    expect(config.peerTls).toBeUndefined();
  });

  it('--client-cert-auth with --trusted-ca-file asks for client certificates', () => {
    const config = parseServeConfig({ ...CLIENT_TLS, clientCertAuth: 'true', trustedCaFile: fixture('ca.crt') });
    expect(config.clientTls).toMatchObject({ clientCertAuth: true, trustedCaFile: fixture('ca.crt') });
    expect(parseServeConfig({ ...CLIENT_TLS, clientCertAuth: 'false' }).clientTls?.clientCertAuth).toBe(false);
  });

  it('the three peer files make peer TLS', () => {
    const config = parseServeConfig(PEER_TLS);
    expect(config.peerTls).toEqual({ certFile: fixture('server.crt'), keyFile: fixture('server.key'), trustedCaFile: fixture('ca.crt') });
    expect(config.clientTls).toBeUndefined();
  });

  it.each<[string, ServeFlags, RegExp]>([
    ['an https client URL without a certificate', { listenClientUrls: 'https://127.0.0.1:2379' }, /--listen-client-urls: https:\/\/127\.0\.0\.1:2379 is https:\/\/ but --cert-file and --key-file are not given/],
    ['a certificate with an http client URL', { ...CLIENT_TLS, listenClientUrls: 'http://127.0.0.1:2379' }, /--listen-client-urls: http:\/\/127\.0\.0\.1:2379 is http:\/\/ but --cert-file and --key-file are given: use https:\/\//],
    ['a certificate with the default (http) client URL', { certFile: fixture('server.crt'), keyFile: fixture('server.key') }, /--listen-client-urls: http:\/\/127\.0\.0\.1:2379 is http:\/\//],
    ['one http URL among https client URLs', { ...CLIENT_TLS, listenClientUrls: 'https://127.0.0.1:2379,http://127.0.0.1:2381' }, /http:\/\/127\.0\.0\.1:2381 is http:\/\//],
    ['an http advertised client URL with TLS', { ...CLIENT_TLS, advertiseClientUrls: 'http://10.0.0.1:2379' }, /--advertise-client-urls: http:\/\/10\.0\.0\.1:2379 is http:\/\//],
    ['--cert-file without --key-file', { ...CLIENT_TLS, keyFile: undefined }, /--cert-file needs --key-file too/],
    ['--key-file without --cert-file', { ...CLIENT_TLS, certFile: undefined }, /--key-file needs --cert-file too/],
    ['--client-cert-auth without --trusted-ca-file', { ...CLIENT_TLS, clientCertAuth: 'true' }, /--client-cert-auth needs --trusted-ca-file/],
    ['--client-cert-auth without a certificate', { clientCertAuth: 'true', trustedCaFile: fixture('ca.crt') }, /--client-cert-auth needs --cert-file and --key-file/],
    ['--trusted-ca-file without --client-cert-auth', { ...CLIENT_TLS, trustedCaFile: fixture('ca.crt') }, /--trusted-ca-file has no effect without --client-cert-auth/],
    ['--client-cert-auth that is not a boolean', { ...CLIENT_TLS, clientCertAuth: 'yes', trustedCaFile: fixture('ca.crt') }, /--client-cert-auth must be true or false/],
    ['an empty --cert-file', { ...CLIENT_TLS, certFile: '' }, /--cert-file needs a file name/],
    ['https peer URLs without peer certificates', { ...PEER_TLS, peerCertFile: undefined, peerKeyFile: undefined, peerTrustedCaFile: undefined }, /--listen-peer-urls: https:\/\/127\.0\.0\.1:2380 is https:\/\/ but --peer-cert-file, --peer-key-file and --peer-trusted-ca-file are not given/],
    ['peer certificates with an http listen URL', { ...PEER_TLS, listenPeerUrls: 'http://127.0.0.1:2380', initialAdvertisePeerUrls: 'https://127.0.0.1:2380' }, /--listen-peer-urls: http:\/\/127\.0\.0\.1:2380 is http:\/\/ but --peer-cert-file/],
    ['peer certificates with another member at an http URL', { ...PEER_TLS, initialCluster: 'n1=https://127.0.0.1:2380,n2=http://127.0.0.1:2390' }, /--initial-cluster: http:\/\/127\.0\.0\.1:2390 is http:\/\//],
    ['peer certificates with an http advertised peer URL', { ...PEER_TLS, initialAdvertisePeerUrls: 'http://127.0.0.1:2380', initialCluster: 'n1=http://127.0.0.1:2380' }, /--initial-advertise-peer-urls: http:\/\/127\.0\.0\.1:2380 is http:\/\//],
    ['a peer certificate without a trusted CA (peer TLS is mutual)', { ...PEER_TLS, peerTrustedCaFile: undefined }, /peer TLS is mutual: --peer-cert-file and --peer-key-file needs --peer-trusted-ca-file too/],
    ['a peer CA alone', { ...PEER_TLS, peerCertFile: undefined, peerKeyFile: undefined }, /--peer-trusted-ca-file needs --peer-cert-file and --peer-key-file too/],
  ])('refuses %s with a clear message', (_name, flags, message) => {
    expect(refusal(flags)).toMatch(message);
  });

  it('client TLS and peer TLS are independent: TLS clients with plain peers, and the reverse', () => {
    expect(parseServeConfig(CLIENT_TLS).peerTls).toBeUndefined();
    const both = parseServeConfig({ ...PEER_TLS, ...CLIENT_TLS });
    expect(both.clientTls).toBeDefined();
    expect(both.peerTls).toBeDefined();
  });
});

describe('TLS files, read at startup', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-tls-config-'));
    await writeFile(join(dir, 'not-a-certificate.pem'), 'hello\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the fixtures: client listener with client certificates, and mutual peer TLS', async () => {
    const client = await loadClientListenerTls({ certFile: fixture('server.crt'), keyFile: fixture('server.key'), trustedCaFile: fixture('ca.crt'), clientCertAuth: true });
    expect(client.requireCallerCertificate).toBe(true);
    expect(client.ca?.toString()).toContain('BEGIN CERTIFICATE');
    const peer = await loadPeerTls({ certFile: fixture('server.crt'), keyFile: fixture('server.key'), trustedCaFile: fixture('ca.crt') });
    expect(peer.listener.requireCallerCertificate).toBe(true);
    expect(peer.sender.cert).toEqual(peer.listener.cert);
  });

  it('a missing file names the flag and the file', async () => {
    const missing = join(dir, 'absent.crt');
    await expect(loadClientListenerTls({ certFile: missing, keyFile: fixture('server.key'), trustedCaFile: undefined, clientCertAuth: false })).rejects.toThrow(
      new RegExp(`--cert-file ${missing.replaceAll('.', '\\.')}: cannot read it \\(ENOENT\\)`),
    );
  });

  it('a key that does not belong to the certificate is refused', async () => {
    await expect(loadPeerTls({ certFile: fixture('server.crt'), keyFile: fixture('client.key'), trustedCaFile: fixture('ca.crt') })).rejects.toThrow(
      /--peer-cert-file and --peer-key-file are not a usable certificate and key: .*key values mismatch/,
    );
  });

  it('a CA file without a certificate is refused (TLS would silently trust nothing)', async () => {
    const bad = join(dir, 'not-a-certificate.pem');
    await expect(loadClientListenerTls({ certFile: fixture('server.crt'), keyFile: fixture('server.key'), trustedCaFile: bad, clientCertAuth: true })).rejects.toThrow(
      /--trusted-ca-file: no PEM certificate in it/,
    );
  });
});
