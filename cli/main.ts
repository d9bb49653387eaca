#!/usr/bin/env node
// The `cairn` command. Exit status: 0 success, 1 a failed request, 2 bad usage.
import { Command, CommanderError, Option } from 'commander';
import { CairnError } from '../src/errors.js';
import { positiveInteger } from './arguments.js';
import { addCairnCommands } from './commands.js';
import type { GlobalOptions } from './context.js';
import { OUTPUT_FORMATS } from './output.js';

// A reader that went away (`cairn get --prefix '' | head`) is not a failure: stop quietly, as cat does.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('cairn')
  .description('a replicated, watchable configuration store')
  .option('--endpoints <urls>', 'client URLs of the cluster, comma separated (env CAIRN_ENDPOINTS)', process.env.CAIRN_ENDPOINTS ?? 'http://127.0.0.1:2379')
  .option('--timeout <ms>', 'deadline of each request, in milliseconds', positiveInteger, 5000)
  .addOption(new Option('-o, --output <format>', 'simple (etcdctl\'s lines), json (one document; watch: one per event), table (what a command lists)').choices(OUTPUT_FORMATS).default('simple'))
  .option('--cacert <file>', 'verify https endpoints against this CA (PEM) instead of the system CAs (env CAIRN_CACERT)', process.env.CAIRN_CACERT)
  .option('--cert <file>', 'client certificate (PEM) for https endpoints that require one (env CAIRN_CERT)', process.env.CAIRN_CERT)
  .option('--key <file>', 'key of --cert (PEM) (env CAIRN_KEY)', process.env.CAIRN_KEY)
  .exitOverride();
const globals = (): GlobalOptions => program.opts<GlobalOptions>();
addCairnCommands(program, globals);

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
