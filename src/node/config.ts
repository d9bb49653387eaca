import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';

/** Everything `cairn serve` needs, validated once and frozen. Defaults are API.md's. */
export interface ServeConfig {
  /** Member name, unique in the cluster. Default `default`. */
  readonly name: string;
  /** Where the member keeps everything. Default `./<name>.cairn`. */
  readonly dataDir: string;
  /** Client API listeners. Default `http://127.0.0.1:2379`. */
  readonly listenClientUrls: readonly URL[];
  /** Client URLs told to others. Default: the listen URLs. */
  readonly advertiseClientUrls: readonly string[];
  /** Peer (Raft) listener. Default `http://127.0.0.1:2380`. */
  readonly listenPeerUrls: readonly URL[];
  /** Peer URLs told to others. Default: the listen URLs. */
  readonly initialAdvertisePeerUrls: readonly string[];
  /** name -> peer URLs of the founding members. Default `<name>=<advertised peer url>`. */
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  /** `new` forms a cluster; `existing` joins one that already added this member. Default `new`. */
  readonly initialClusterState: 'new' | 'existing';
  /** Guards against mixing clusters. Default `cairn-cluster`. */
  readonly initialClusterToken: string;
  /** Milliseconds between leader heartbeats (one Raft tick). Default 100. */
  readonly heartbeatIntervalMs: number;
  /** Milliseconds without a leader before an election. Default 1000. */
  readonly electionTimeoutMs: number;
  /** Applied entries between snapshots (and log compaction). Default 10000. */
  readonly snapshotCount: number;
  /** Largest client request body. Default 1572864. */
  readonly maxRequestBytes: number;
  /** Writes are refused past this data size. Default 2147483648. */
  readonly quotaBackendBytes: number;
  /** `debug`, `info`, `warn` or `error`. Default `info`. */
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** TLS of the client listener (--cert-file ...). Default none: plain HTTP. */
  readonly clientTls: ClientTlsConfig | undefined;
  /** Mutual TLS between members (--peer-cert-file ...). Default none: plain HTTP. */
  readonly peerTls: PeerTlsConfig | undefined;
}

/** The client listener serves https with this certificate; the client URLs are all https://. */
export interface ClientTlsConfig {
  /** --cert-file, an absolute path (PEM). */
  readonly certFile: string;
  /** --key-file, an absolute path (PEM). */
  readonly keyFile: string;
  /** --trusted-ca-file: the CA that signs client certificates. Set exactly when clientCertAuth is. */
  readonly trustedCaFile: string | undefined;
  /** --client-cert-auth: every request needs a client certificate signed by trustedCaFile. */
  readonly clientCertAuth: boolean;
}

/**
 * Members talk mutual TLS: the peer listener serves certFile and requires a
 * client certificate signed by trustedCaFile; the peer sender presents certFile
 * and accepts only members whose certificate trustedCaFile signed. Every peer URL is https://.
 */
export interface PeerTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly trustedCaFile: string;
}

/** The flags as given (strings, from the command line or CAIRN_* environment variables). */
export interface ServeFlags {
  readonly name?: string;
  readonly dataDir?: string;
  readonly listenClientUrls?: string;
  readonly advertiseClientUrls?: string;
  readonly listenPeerUrls?: string;
  readonly initialAdvertisePeerUrls?: string;
  readonly initialCluster?: string;
  readonly initialClusterState?: string;
  readonly initialClusterToken?: string;
  readonly heartbeatInterval?: string;
  readonly electionTimeout?: string;
  readonly snapshotCount?: string;
  readonly maxRequestBytes?: string;
  readonly quotaBackendBytes?: string;
  readonly logLevel?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly trustedCaFile?: string;
  /** `true` or `false` (a bare --client-cert-auth means true). */
  readonly clientCertAuth?: string;
  readonly peerCertFile?: string;
  readonly peerKeyFile?: string;
  readonly peerTrustedCaFile?: string;
}

function parseUrls(flag: string, value: string): URL[] {
  const urls = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (urls.length === 0) throw new InvalidArgumentError(`--${flag} needs at least one URL`);
  return urls.map((s) => {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new InvalidArgumentError(`--${flag}: ${JSON.stringify(s)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`--${flag}: ${s} must be http:// or https://`);
    if (url.port === '') throw new InvalidArgumentError(`--${flag}: ${s} needs a port`);
    return url;
  });
}

/** `http://h:2380/` and `http://h:2380` are the same URL: keep the origin (plus any path) without the trailing slash. */
export function normalizeUrl(url: URL): string {
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function parseInteger(flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new InvalidArgumentError(`--${flag} must be an integer >= ${min} (got ${JSON.stringify(value)})`);
  }
  return n;
}

function parseInitialCluster(value: string): Map<string, string[]> {
  const cluster = new Map<string, string[]>();
  for (const part of value.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--initial-cluster: ${JSON.stringify(item)} is not name=url`);
    const name = item.slice(0, eq);
    const url = normalizeUrl(parseUrls('initial-cluster', item.slice(eq + 1))[0]);
    cluster.set(name, [...(cluster.get(name) ?? []), url]);
  }
  if (cluster.size === 0) throw new InvalidArgumentError('--initial-cluster is empty');
  return cluster;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

function parseBoolean(flag: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new InvalidArgumentError(`--${flag} must be true or false (got ${JSON.stringify(value)})`);
}

/** A file flag: undefined when absent; an empty value is a mistake (an unset variable in a script), not "no file". */
function parseFile(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '') throw new InvalidArgumentError(`--${flag} needs a file name`);
  return resolve(value);
}

function parseClientTls(flags: ServeFlags): ClientTlsConfig | undefined {
  const certFile = parseFile('cert-file', flags.certFile);
  const keyFile = parseFile('key-file', flags.keyFile);
  const trustedCaFile = parseFile('trusted-ca-file', flags.trustedCaFile);
  const clientCertAuth = parseBoolean('client-cert-auth', flags.clientCertAuth);
  if (certFile === undefined && keyFile === undefined) {
    if (clientCertAuth || trustedCaFile !== undefined) {
      throw new InvalidArgumentError(`--${clientCertAuth ? 'client-cert-auth' : 'trusted-ca-file'} needs --cert-file and --key-file (the client listener must serve https to check client certificates)`);
    }
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) throw new InvalidArgumentError(`--${certFile ? 'cert-file' : 'key-file'} needs --${certFile ? 'key-file' : 'cert-file'} too`);
  if (clientCertAuth && trustedCaFile === undefined) throw new InvalidArgumentError('--client-cert-auth needs --trusted-ca-file (the CA that signs client certificates)');
  // A trusted CA that checks nothing would look like protection; say so instead.
  if (!clientCertAuth && trustedCaFile !== undefined) throw new InvalidArgumentError('--trusted-ca-file has no effect without --client-cert-auth: add --client-cert-auth, or drop --trusted-ca-file');
  return Object.freeze({ certFile, keyFile, trustedCaFile, clientCertAuth });
}

function parsePeerTls(flags: ServeFlags): PeerTlsConfig | undefined {
  const files = {
    'peer-cert-file': parseFile('peer-cert-file', flags.peerCertFile),
    'peer-key-file': parseFile('peer-key-file', flags.peerKeyFile),
    'peer-trusted-ca-file': parseFile('peer-trusted-ca-file', flags.peerTrustedCaFile),
  };
  const given = Object.entries(files).filter(([, file]) => file !== undefined);
  if (given.length === 0) return undefined;
  if (given.length < 3) {
    const missing = Object.keys(files).filter((flag) => files[flag as keyof typeof files] === undefined);
    throw new InvalidArgumentError(`peer TLS is mutual: --${given.map(([flag]) => flag).join(' and --')} needs --${missing.join(' and --')} too`);
  }
  return Object.freeze({ certFile: files['peer-cert-file']!, keyFile: files['peer-key-file']!, trustedCaFile: files['peer-trusted-ca-file']! });
}

/** Every URL of a listener's kind must be https:// exactly when that listener has TLS. */
function requireScheme(urls: ReadonlyArray<{ flag: string; url: string }>, tls: boolean, tlsFlags: string): void {
  for (const { flag, url } of urls) {
    const https = url.startsWith('https:');
    if (https && !tls) throw new InvalidArgumentError(`--${flag}: ${url} is https:// but ${tlsFlags} are not given (use http://, or give them)`);
    if (!https && tls) throw new InvalidArgumentError(`--${flag}: ${url} is http:// but ${tlsFlags} are given: use https://`);
  }
}

export function parseServeConfig(flags: ServeFlags): ServeConfig {
  const name = flags.name ?? 'default';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new InvalidArgumentError(`--name ${JSON.stringify(name)}: use 1-64 letters, digits, '.', '_' or '-'`);
  const listenClientUrls = parseUrls('listen-client-urls', flags.listenClientUrls ?? 'http://127.0.0.1:2379');
  const listenPeerUrls = parseUrls('listen-peer-urls', flags.listenPeerUrls ?? 'http://127.0.0.1:2380');
  const advertiseClientUrls = flags.advertiseClientUrls
    ? parseUrls('advertise-client-urls', flags.advertiseClientUrls).map(normalizeUrl)
    : listenClientUrls.map(normalizeUrl);
  const initialAdvertisePeerUrls = flags.initialAdvertisePeerUrls
    ? parseUrls('initial-advertise-peer-urls', flags.initialAdvertisePeerUrls).map(normalizeUrl)
    : listenPeerUrls.map(normalizeUrl);
  const initialCluster = flags.initialCluster
    ? parseInitialCluster(flags.initialCluster)
    : new Map([[name, initialAdvertisePeerUrls]]);
  const own = initialCluster.get(name);
  if (!own) throw new InvalidArgumentError(`--initial-cluster does not name this member (${name})`);
  if (!own.some((u) => initialAdvertisePeerUrls.includes(u))) {
    throw new InvalidArgumentError(`--initial-cluster gives ${name} ${own.join(',')}, but it advertises ${initialAdvertisePeerUrls.join(',')}`);
  }
  const state = flags.initialClusterState ?? 'new';
  if (state !== 'new' && state !== 'existing') throw new InvalidArgumentError(`--initial-cluster-state must be new or existing (got ${JSON.stringify(state)})`);
  const heartbeatIntervalMs = parseInteger('heartbeat-interval', flags.heartbeatInterval, 100, 1);
  const electionTimeoutMs = parseInteger('election-timeout', flags.electionTimeout, 1000, 1);
  if (electionTimeoutMs < 5 * heartbeatIntervalMs) {
    throw new InvalidArgumentError(`--election-timeout (${electionTimeoutMs} ms) must be at least 5 times --heartbeat-interval (${heartbeatIntervalMs} ms)`);
  }
  const logLevel = flags.logLevel ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new InvalidArgumentError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const clientTls = parseClientTls(flags);
  const peerTls = parsePeerTls(flags);
  requireScheme(
    [
      ...listenClientUrls.map((url) => ({ flag: 'listen-client-urls', url: normalizeUrl(url) })),
      ...advertiseClientUrls.map((url) => ({ flag: 'advertise-client-urls', url })),
    ],
    clientTls !== undefined,
    '--cert-file and --key-file',
  );
  requireScheme(
    [
      ...listenPeerUrls.map((url) => ({ flag: 'listen-peer-urls', url: normalizeUrl(url) })),
      ...initialAdvertisePeerUrls.map((url) => ({ flag: 'initial-advertise-peer-urls', url })),
      ...[...initialCluster.values()].flat().map((url) => ({ flag: 'initial-cluster', url })),
    ],
    peerTls !== undefined,
    '--peer-cert-file, --peer-key-file and --peer-trusted-ca-file',
  );
  return Object.freeze({
    name,
    dataDir: resolve(flags.dataDir ?? `./${name}.cairn`),
    listenClientUrls,
    advertiseClientUrls,
    listenPeerUrls,
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState: state,
    initialClusterToken: flags.initialClusterToken ?? 'cairn-cluster',
    heartbeatIntervalMs,
    electionTimeoutMs,
    snapshotCount: parseInteger('snapshot-count', flags.snapshotCount, 10000, 1),
    maxRequestBytes: parseInteger('max-request-bytes', flags.maxRequestBytes, 1572864, 1024),
    quotaBackendBytes: parseInteger('quota-backend-bytes', flags.quotaBackendBytes, 2147483648, 1024 * 1024),
    logLevel: logLevel as ServeConfig['logLevel'],
    clientTls,
    peerTls,
  });
}

/**
 * A member's id: 16 hex digits from its peer URLs and the cluster token (as etcd
 * derives it), so every founder computes the same ids for everyone.
 */
export function memberIdFor(peerUrls: readonly string[], clusterToken: string): string {
  const hash = createHash('sha256');
  for (const url of [...peerUrls].sort()) hash.update(url).update('\n');
  hash.update(clusterToken);
  const id = hash.digest('hex').slice(0, 16);
  // 0 means "no member" in places (etcd's convention); never hand it out.
  return id === '0000000000000000' ? '0000000000000001' : id;
}
