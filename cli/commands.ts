import type { Command } from 'commander';
import { adminCommands } from './admin-commands.js';
import { benchCommand } from './bench.js';
import { clusterCommand } from './cluster.js';
import type { Globals } from './context.js';
import { attachExamples } from './help-examples.js';
import { kvCommands } from './kv-commands.js';
import { serveCommand } from './serve.js';

/**
 * Every cairn command under `program`, each with its --help examples. main.ts
 * runs it; the help test builds the same tree with it.
 */
export function addCairnCommands(program: Command, globals: Globals): Command {
  program.addCommand(serveCommand());
  program.addCommand(clusterCommand());
  for (const command of [...kvCommands(globals), ...adminCommands(globals), benchCommand(globals)]) program.addCommand(command);
  attachExamples(program);
  return program;
}
