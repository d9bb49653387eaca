import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addCairnCommands } from '../../../cli/commands.js';
import { commandPath } from '../../../cli/help-examples.js';

// Every command's --help ends with examples that run it: walk the whole tree.

function tree(): Command {
  const program = new Command('cairn');
  return addCairnCommands(program, () => ({ endpoints: 'http://127.0.0.1:2379', timeout: 1000, output: 'simple' }));
}

function allCommands(root: Command): Command[] {
  const out: Command[] = [];
  const visit = (c: Command): void => {
    out.push(c);
    c.commands.forEach(visit);
  };
  visit(root);
  return out;
}

function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  command.outputHelp();
  return text;
}

describe('cairn --help', () => {
  const commands = allCommands(tree());

  it('walks the commands the issue names, and more', () => {
    const paths = new Set(commands.map(commandPath));
    for (const path of ['get', 'put', 'del', 'watch', 'txn', 'status', 'endpoint health', 'member list', 'compact', 'snapshot save', 'snapshot restore', 'bench put', 'bench get', 'bench watch', 'cluster up', 'serve', 'lease list']) {
      expect(paths, path).toContain(path);
    }
  });

  it.each(commands.map((c) => [commandPath(c) || '(cairn)', c] as const))('%s shows an example that runs it', (path, command) => {
    const help = helpOf(command);
    const examples = /\nExamples:\n((?: {2}\$ .*\n?|(?: {6}).*\n?)+)/.exec(help);
    expect(examples, `no Examples section in:\n${help}`).not.toBeNull();
    const lines = examples![1].split('\n').filter((l) => l.startsWith('  $ '));
    expect(lines.length).toBeGreaterThan(0);
    const invocation = path === '(cairn)' ? 'cairn ' : `cairn ${path}`;
    expect(lines.some((l) => l.includes(invocation)), `no example runs "${invocation}":\n${lines.join('\n')}`).toBe(true);
  });
});
