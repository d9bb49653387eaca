import { createServer } from 'node:net';
import { basename, relative, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { LocalCluster, type MemberExit } from '../cluster/local-cluster.js';
import { port, positiveInteger } from './arguments.js';
import { memberLinePrinter } from './member-log.js';

// `cairn cluster up`: a local cluster in the foreground. Members are child
// processes (each in its own process group, so Ctrl-C reaches only this one,
// which stops them in order); their log lines are shown prefixed with their
// names; one that dies is reported and, unless --no-restart, started again
// (at most --max-restarts times a minute).

const READY_TIMEOUT_MS = 60_000;

/** How to run this same cairn command from the user's shell. */
function cairnCommandLine(): string {
  const script = process.argv[1] ?? 'cairn';
  if (basename(script) === 'cairn') return 'cairn';
  const path = relative(process.cwd(), script);
  return `node ${path.startsWith('..') ? resolve(script) : path}`;
}

/** Whether something already listens on host:port (another cairn, an etcd...). */
function portTaken(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(true));
    server.listen(Number(port), hostname, () => server.close(() => resolvePort(false)));
  });
}

/** Refuses to start when a member's port is taken: say which, and what to do. */
async function checkPortsFree(local: LocalCluster): Promise<void> {
  for (const m of local.members) {
    for (const url of [m.clientUrl, m.peerUrl]) {
      if (await portTaken(url)) {
        throw new Error(`${url} (member ${m.name}) is already in use, by another cairn or etcd perhaps: stop it, or run this cluster in another --dir with other --client-port and --peer-port`);
      }
    }
  }
}

function describeExit(exit: MemberExit, maxPerMinute: number): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
  if (exit.restarting) return `member ${exit.name} ${how}; restarting it (restart ${exit.restartsInLastMinute} of at most ${maxPerMinute} a minute)`;
  if (maxPerMinute === 0) return `member ${exit.name} ${how}; not restarting it (--no-restart)`;
  return `member ${exit.name} ${how}; not restarting it: it already restarted ${maxPerMinute} times in the last minute (see its log lines above)`;
}

function clusterSize(value: string): number {
  const n = positiveInteger(value);
  if (n > 7) throw new InvalidArgumentError(`a local cluster has 1 to 7 members, not ${n}`);
  return n;
}

interface UpFlags {
  size: number;
  dir: string;
  clientPort: number;
  peerPort: number;
  restart: boolean;
  maxRestarts: number;
  logLevel: string;
}

async function up(o: UpFlags, explicit: (name: string) => boolean): Promise<void> {
  const maxPerMinute = o.restart ? o.maxRestarts : 0;
  const names = Array.from({ length: 7 }, (_, i) => `n${i + 1}`);
  let resolveFinished: (code: number) => void = () => undefined;
  const finished = new Promise<number>((r) => (resolveFinished = r));
  let ended = false;
  const settle = (code: number): void => {
    ended = true;
    resolveFinished(code);
  };
  const local = await LocalCluster.create({
    size: explicit('size') ? o.size : undefined,
    dir: o.dir,
    clientPort: explicit('clientPort') ? o.clientPort : undefined,
    peerPort: explicit('peerPort') ? o.peerPort : undefined,
    extraFlags: ['--log-level', o.logLevel],
    onLine: memberLinePrinter(names, process.stdout.isTTY === true && !process.env.NO_COLOR),
    maxRestartsPerMinute: maxPerMinute,
    ownProcessGroups: true,
    onExit: (exit) => {
      process.stderr.write(`cairn: ${describeExit(exit, maxPerMinute)}\n`);
      if (!exit.restarting && local.members.every((m) => !m.process)) {
        process.stderr.write('cairn: every member has stopped\n');
        settle(1);
      }
    },
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) {
      process.stderr.write('cairn: killing the members\n');
      void local.stop('SIGKILL');
      return;
    }
    stopping = true;
    process.stderr.write('cairn: stopping the cluster (Ctrl-C again to kill it)...\n');
    void local.stop().then(() => {
      process.stderr.write('cairn: stopped\n');
      settle(0);
    });
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, stop);
  try {
    await checkPortsFree(local);
    try {
      await local.start();
    } catch (err) {
      await local.stop();
      throw err;
    }
    let failed = false;
    try {
      await Promise.race([local.waitReady(READY_TIMEOUT_MS), finished]);
    } catch (err) {
      failed = true;
      process.stderr.write(`cairn: ${(err as Error).message}; see the members' log lines above\n`);
      if (!stopping) stop();
    }
    if (!stopping && !ended) printReady(local, o.dir);
    const code = await finished;
    process.exitCode = failed ? 1 : code;
  } finally {
    for (const s of signals) process.off(s, stop);
  }
}

function printReady(local: LocalCluster, dir: string): void {
  const endpoints = local.clientUrls.join(',');
  const cairn = cairnCommandLine();
  const lines = [
    '',
    `cairn: a ${local.members.length}-member cluster is up, data in ${resolve(dir)}; Ctrl-C stops it`,
    ...local.members.map((m) => `  ${m.name}  client ${m.clientUrl}  peer ${m.peerUrl}`),
    'Try, in another terminal:',
    `  export CAIRN_ENDPOINTS=${endpoints}`,
    `  ${cairn} put greeting hello && ${cairn} get greeting`,
    `  ${cairn} member list -o table`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

export function clusterCommand(): Command {
  const cluster = new Command('cluster').description('a local cluster on this machine');
  cluster
    .command('up')
    .description('run a local cluster in the foreground (members n1, n2...); Ctrl-C stops it; run again to bring it back with its data')
    .option('--size <n>', 'number of members, 1 to 7', clusterSize, 3)
    .option('--dir <dir>', 'where the members keep their data (and the cluster its layout, cluster.json)', '.cairn')
    .option('--client-port <port>', 'first client port; member i gets it + 10000*i (0: free ports)', port, 2379)
    .option('--peer-port <port>', 'first peer port; member i gets it + 10000*i (0: free ports)', port, 2380)
    .option('--no-restart', 'report a member that dies, but do not start it again')
    .option('--max-restarts <n>', 'restarts of one member per minute, at most', positiveInteger, 3)
    .addOption(new Option('--log-level <level>', 'the members\' log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .action((o: UpFlags, command: Command) => up(o, (name) => command.getOptionValueSource(name) !== 'default'));
  return cluster;
}
