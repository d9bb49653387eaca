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
