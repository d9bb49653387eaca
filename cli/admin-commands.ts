import { Command } from 'commander';
import { memberId, positiveInteger } from './arguments.js';
import { withClient, type GlobalOptions } from './context.js';
import { endpointCommand, statusCommand } from './endpoint-commands.js';
import { leaseCommand } from './lease-commands.js';
import { memberCommand } from './member-commands.js';
import { printJson, writeLine } from './output.js';
import { snapshotCommand } from './snapshot-commands.js';

// The cluster's administration commands: status, endpoint, member, lease,
// move-leader, compact, snapshot. Each group lives in its own file.

export function adminCommands(globals: () => GlobalOptions): Command[] {
  const moveLeader = new Command('move-leader')
    .description('hand leadership to another voting member; returns once it leads')
    .argument('<id>', 'the member to lead (16 hex digits, from cairn member list)', memberId)
    .action((id: string) =>
      withClient(globals, async (client, g) => {
        const r = await client.moveLeader(id);
        if (g.output === 'json') printJson({ leaderId: id, revision: r.header.revision });
        else writeLine(`Leadership moved to ${id}.`);
      }),
    );

  const compact = new Command('compact')
    .description('drop the history below REV (reads and watches from before it then fail with Compacted)')
    .argument('<revision>', 'the oldest revision to keep', positiveInteger)
    .action((revision: number) =>
      withClient(globals, async (client, g) => {
        await client.compact(revision);
        if (g.output === 'json') printJson({ compactRevision: revision });
        else writeLine(`compacted revision ${revision}`);
      }),
    );

  return [statusCommand(globals), endpointCommand(globals), memberCommand(globals), leaseCommand(globals), moveLeader, compact, snapshotCommand(globals)];
}
