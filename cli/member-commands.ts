import { Command } from 'commander';
import type { Member } from '../src/client/index.js';
import { memberId } from './arguments.js';
import { withClient, type Globals } from './context.js';
import { UsageError } from './failure.js';
import { memberJson, printJson, printMembers, writeLine, type OutputFormat } from './output.js';

// cairn member list | add | remove | promote.

/** A confirmation line, then the membership it produced (json: one document with both). */
function printChange(message: string, members: readonly Member[], output: OutputFormat, extra: Record<string, unknown> = {}): void {
  if (output === 'json') {
    printJson({ ...extra, members: members.map(memberJson) });
    return;
  }
  writeLine(message);
  if (output === 'table') printMembers(members, output);
}

export function memberCommand(globals: Globals): Command {
  const member = new Command('member').description('cluster membership: list, add, remove, promote');
  member
    .command('list')
    .description('every member: id, name, peer and client URLs, learner or voter')
    .action(() => withClient(globals, async (client, g) => printMembers(await client.members(), g.output)));

  member
    .command('add')
    .description('announce a new member (then start it with the lines printed); as a learner with --learner')
    .argument('<name>', 'the new member\'s name (its --name when it starts)')
    .requiredOption('--peer-urls <urls>', 'its peer URLs, comma separated')
    .option('--learner', 'add it as a learner (it votes only once promoted: cairn member promote ID)')
    .action((name: string, o: { peerUrls: string; learner?: boolean }) =>
      withClient(globals, async (client, g) => {
        const peerUrls = o.peerUrls.split(',').map((s) => s.trim()).filter(Boolean);
        if (peerUrls.length === 0) throw new UsageError('--peer-urls is empty');
        const r = await client.addMember(peerUrls, { learner: o.learner === true });
        const initialCluster = [...r.members.filter((m) => m.id !== r.member.id).map((m) => `${m.name}=${m.peerUrls[0]}`), `${name}=${peerUrls[0]}`].join(',');
        const start = { name, initialCluster, initialClusterState: 'existing' };
        if (g.output === 'json') {
          printJson({ member: memberJson(r.member), members: r.members.map(memberJson), start });
          return;
        }
        writeLine(`Member ${r.member.id} added to the cluster${o.learner ? ' as a learner' : ''}.`);
        writeLine('Start it with these (and the cluster\'s --initial-cluster-token, and its own listen URLs):');
        writeLine(`CAIRN_NAME="${name}"`);
        writeLine(`CAIRN_INITIAL_CLUSTER="${initialCluster}"`);
        writeLine('CAIRN_INITIAL_CLUSTER_STATE="existing"');
        if (g.output === 'table') printMembers(r.members, g.output);
      }),
    );

  member
    .command('remove')
    .description('remove a member from the cluster')
    .argument('<id>', 'the member id (16 hex digits, from cairn member list)', memberId)
    .action((id: string) =>
      withClient(globals, async (client, g) => printChange(`Member ${id} removed from the cluster.`, await client.removeMember(id), g.output, { removed: id })),
    );

  member
    .command('promote')
    .description('make a learner a voting member (refused while it is behind)')
    .argument('<id>', 'the learner\'s id (16 hex digits, from cairn member list)', memberId)
    .action((id: string) =>
      withClient(globals, async (client, g) => printChange(`Member ${id} promoted to a voting member.`, await client.promoteMember(id), g.output, { promoted: id })),
    );
  return member;
}
