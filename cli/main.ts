#!/usr/bin/env node
// The `cairn` command. Exit status: 0 success, 1 a failed request, 2 bad usage.
import { Command, CommanderError } from 'commander';
import { CairnError } from '../src/errors.js';
import { benchCommand } from './bench.js';
import { clusterCommand } from './cluster.js';
import { adminCommands } from './admin-commands.js';
import { kvCommands, type GlobalOptions } from './kv-commands.js';
import { serveCommand } from './serve.js';

const program = new Command('cairn')
  .description('a replicated, watchable configuration store')
  .option('--endpoints <urls>', 'client URLs of the cluster, comma separated (env CAIRN_ENDPOINTS)', process.env.CAIRN_ENDPOINTS ?? 'http://127.0.0.1:2379')
  .option('--timeout <ms>', 'deadline of each request', (v) => Number(v), 5000)
  .option('-o, --output <format>', 'simple or json', 'simple')
  .exitOverride()
  .addCommand(serveCommand())
  .addCommand(clusterCommand());
const globals = (): GlobalOptions => program.opts<GlobalOptions>();
for (const command of [...kvCommands(globals), ...adminCommands(globals)]) program.addCommand(command);
program.addCommand(benchCommand(() => (program.opts<{ endpoints: string }>().endpoints).split(',').map((s) => s.trim()).filter(Boolean)));

// Usage errors anywhere in the tree come back here (exit 2) instead of exiting inside commander.
const overrideExits = (command: Command): void => {
  command.exitOverride();
  command.commands.forEach(overrideExits);
};
overrideExits(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CairnError && err.code === 'InvalidArgument') {
    process.stderr.write(`cairn: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`cairn: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
