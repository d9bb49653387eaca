import type { Command } from 'commander';

// Examples shown after every command's --help, by command path ('' is `cairn`
// itself). A unit test walks the whole command tree and checks each has some.

const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  '': [
    'cairn cluster up                                   # a local 3-member cluster',
    'export CAIRN_ENDPOINTS=http://127.0.0.1:2379,http://127.0.0.1:12379,http://127.0.0.1:22379',
    'cairn put greeting hello && cairn get greeting',
    'cairn member list -o table',
  ],
  serve: [
    'cairn serve --name n1 --data-dir ./n1.cairn --listen-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \\\n      --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380,n3=http://127.0.0.1:22380',
    'cairn serve --name n1 --data-dir ./n1.cairn --listen-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380   # a restart',
  ],
  cluster: ['cairn cluster up --size 3 --dir .cairn'],
  'cluster up': ['cairn cluster up', 'cairn cluster up --size 5 --dir /tmp/five', 'cairn cluster up --no-restart --log-level warn'],
  get: ['cairn get app/db/url', 'cairn get app/ --prefix -o table', 'cairn get app/db/url --print-value-only > url.txt', 'cairn get "" --prefix --keys-only --limit 10', 'cairn get app/db/url --rev 42 -o json'],
  put: ['cairn put app/db/url postgres://db:5432/app', 'cairn put app/logo < logo.png                     # the value from stdin, byte for byte', 'cairn put lock me --if-version 0                   # only if absent', 'cairn put session/1 data --lease 7587869032'],
  del: ['cairn del app/db/url', 'cairn del app/ --prefix --prev-kv'],
  watch: ['cairn watch app/ --prefix', 'cairn watch app/ --prefix --rev 100 -o json | jq .key', 'cairn watch app/db/url --prev-kv'],
  txn: [
    'cairn txn take-lock.json && echo "the lock is mine"',
    'echo \'{"compare":[{"key":"lock","target":"version","op":"=","value":0}],"success":[{"put":{"key":"lock","value":"me"}}],"failure":[{"get":{"key":"lock"}}]}\' | cairn txn',
  ],
  status: ['cairn status -o table', 'cairn status --cluster -o json'],
  endpoint: ['cairn endpoint health --cluster', 'cairn endpoint status -o table'],
  'endpoint health': ['cairn endpoint health', 'cairn endpoint health --cluster -o table'],
  'endpoint status': ['cairn endpoint status -o table', 'cairn endpoint status --cluster -o json'],
  member: ['cairn member list -o table', 'cairn member add n4 --peer-urls http://127.0.0.1:32380 --learner'],
  'member list': ['cairn member list', 'cairn member list -o table'],
  'member add': ['cairn member add n4 --peer-urls http://127.0.0.1:32380 --learner'],
  'member remove': ['cairn member remove 5f0c2d4e6a8b1c3d'],
  'member promote': ['cairn member promote 5f0c2d4e6a8b1c3d'],
  lease: ['cairn lease grant 30', 'cairn lease list -o table'],
  'lease grant': ['cairn lease grant 30', 'cairn lease grant 30 -o json | jq .id'],
  'lease revoke': ['cairn lease revoke 7587869032'],
  'lease keep-alive': ['cairn lease keep-alive 7587869032', 'cairn lease keep-alive 7587869032 --once'],
  'lease ttl': ['cairn lease ttl 7587869032 --keys'],
  'lease list': ['cairn lease list', 'cairn lease list -o table'],
  'move-leader': ['cairn move-leader 5f0c2d4e6a8b1c3d'],
  compact: ['cairn compact 1000'],
  snapshot: ['cairn snapshot save backup.snap', 'cairn snapshot status backup.snap -o table'],
  'snapshot save': ['cairn snapshot save backup.snap'],
  'snapshot status': ['cairn snapshot status backup.snap', 'cairn snapshot status backup.snap -o json'],
  'snapshot restore': [
    'cairn snapshot restore backup.snap --name n1 --data-dir ./n1.cairn --initial-advertise-peer-urls http://127.0.0.1:2380 \\\n      --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380,n3=http://127.0.0.1:22380 --initial-cluster-token restored-1',
    'cairn serve --name n1 --data-dir ./n1.cairn --initial-cluster-token restored-1 --listen-peer-urls http://127.0.0.1:2380 --listen-client-urls http://127.0.0.1:2379\n      # once n1, n2 and n3 are restored the same way: start each; they form the new cluster',
  ],
  bench: ['cairn bench put --clients 64 --total 30000', 'cairn bench watch --watchers 10 --total 1000 -o json'],
  'bench put': ['cairn bench put --clients 64 --total 30000 --value-size 256', 'cairn bench put --total 1000 -o json'],
  'bench get': ['cairn bench get --clients 64 --total 30000', 'cairn bench get --clients 64 --serializable -o table'],
  'bench watch': ['cairn bench watch --watchers 10 --clients 4 --total 2000', 'cairn bench watch --watchers 100 --total 500 -o json'],
};

/** A command's path from the root, names joined by spaces ('' for the root). */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function examplesOf(path: string): readonly string[] {
  return EXAMPLES[path] ?? [];
}

/** Adds its examples to every command of the tree, and a pointer to --help after a usage error. */
export function attachExamples(root: Command): void {
  const visit = (command: Command): void => {
    const examples = examplesOf(commandPath(command));
    if (examples.length > 0) command.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
    command.showHelpAfterError(`(${['cairn', commandPath(command)].filter(Boolean).join(' ')} --help shows usage and examples)`);
    command.commands.forEach(visit);
  };
  visit(root);
}
