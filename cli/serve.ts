import { Command, Option } from 'commander';
import { parseServeConfig, type ServeFlags } from '../src/node/config.js';

/** Every `cairn serve` flag, each also read from CAIRN_<FLAG_IN_UPPER_SNAKE>. Defaults are in parseServeConfig (API.md). */
const FLAGS: ReadonlyArray<[flag: string, key: keyof ServeFlags, help: string]> = [
  ['name', 'name', 'member name, unique in the cluster (default "default")'],
  ['data-dir', 'dataDir', 'where the member keeps everything (default ./<name>.cairn)'],
  ['listen-client-urls', 'listenClientUrls', 'client API listeners, comma separated (default http://127.0.0.1:2379)'],
  ['advertise-client-urls', 'advertiseClientUrls', 'client URLs told to others (default: the listen URLs)'],
  ['listen-peer-urls', 'listenPeerUrls', 'peer (Raft) listener (default http://127.0.0.1:2380)'],
  ['initial-advertise-peer-urls', 'initialAdvertisePeerUrls', 'peer URLs told to others (default: the listen URLs)'],
  ['initial-cluster', 'initialCluster', 'founding members, n1=http://h:2380,n2=... (default <name>=<peer url>)'],
  ['initial-cluster-state', 'initialClusterState', 'new, or existing to join a running cluster (default new)'],
  ['initial-cluster-token', 'initialClusterToken', 'guards against mixing clusters (default cairn-cluster)'],
  ['heartbeat-interval', 'heartbeatInterval', 'milliseconds between heartbeats (default 100)'],
  ['election-timeout', 'electionTimeout', 'milliseconds before an election (default 1000)'],
  ['snapshot-count', 'snapshotCount', 'applied entries between snapshots (default 10000)'],
  ['max-request-bytes', 'maxRequestBytes', 'largest client request (default 1572864)'],
  ['quota-backend-bytes', 'quotaBackendBytes', 'refuse writes past this data size (default 2147483648)'],
  ['log-level', 'logLevel', 'debug, info, warn or error (default info)'],
  ['cert-file', 'certFile', 'client listener TLS certificate (PEM); the client URLs must then be https://'],
  ['key-file', 'keyFile', 'key of --cert-file (PEM)'],
  ['trusted-ca-file', 'trustedCaFile', 'CA (PEM) that signs client certificates; needs --client-cert-auth'],
  ['peer-cert-file', 'peerCertFile', 'peer TLS certificate (PEM), served and presented to other members; peer URLs must then be https://'],
  ['peer-key-file', 'peerKeyFile', 'key of --peer-cert-file (PEM)'],
  ['peer-trusted-ca-file', 'peerTrustedCaFile', 'CA (PEM) that signs every member\'s peer certificate (peers verify each other)'],
];

/** The one boolean flag: bare `--client-cert-auth` is true; `--client-cert-auth false` or CAIRN_CLIENT_CERT_AUTH=false turns it off. */
const CLIENT_CERT_AUTH_HELP = 'refuse (401 Unauthenticated) client requests without a certificate signed by --trusted-ca-file (default false)';

function envName(flag: string): string {
  return `CAIRN_${flag.toUpperCase().replaceAll('-', '_')}`;
}

export function serveCommand(): Command {
  const command = new Command('serve').description('run a cluster member');
  for (const [flag, , help] of FLAGS) {
    command.addOption(new Option(`--${flag} <value>`, help).env(envName(flag)));
  }
  command.addOption(new Option('--client-cert-auth [true|false]', CLIENT_CERT_AUTH_HELP).env(envName('client-cert-auth')));
  command.action(async (opts: Record<string, string | boolean | undefined>) => {
    const flags: Record<string, string> = {};
    for (const [, key] of FLAGS) if (opts[key] !== undefined) flags[key] = String(opts[key]);
    if (opts.clientCertAuth !== undefined) flags.clientCertAuth = String(opts.clientCertAuth);
    const config = parseServeConfig(flags as ServeFlags);
    // Loaded here, not at the top: every other cairn command would pay for loading the server (~0.3 s).
    const { runMember } = await import('../src/server/member.js');
    await runMember(config);
  });
  return command;
}
