import { Command, InvalidArgumentError } from 'commander';
import { LocalCluster } from '../cluster/local-cluster.js';

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function clusterCommand(): Command {
  const cluster = new Command('cluster').description('a local cluster on this machine');
  cluster
    .command('up')
    .description('run a local cluster in the foreground; Ctrl-C stops it')
    .option('--size <n>', 'number of members', positiveInteger, 3)
    .option('--dir <dir>', 'where the members keep their data', '.cairn')
    .option('--client-port <port>', 'first client port (the others follow, 10 apart)', positiveInteger, 2379)
    .option('--peer-port <port>', 'first peer port (the others follow, 10 apart)', positiveInteger, 2380)
    .action(async (opts: { size: number; dir: string; clientPort: number; peerPort: number }) => {
      const local = await LocalCluster.create({ size: opts.size, dir: opts.dir, clientPort: opts.clientPort, peerPort: opts.peerPort });
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        process.stdout.write('stopping the cluster...\n');
        void local.stop().then(() => process.stdout.write('stopped\n'));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      await local.start();
      await local.waitReady();
      process.stdout.write(`cluster of ${opts.size} ready; data in ${opts.dir}; endpoints: ${local.clientUrls.join(',')}\n`);
      process.stdout.write(`try: curl -X PUT ${local.clientUrls[0]}/v1/kv/greeting -d hello && curl ${local.clientUrls[1]}/v1/kv/greeting\n`);
    });
  return cluster;
}
