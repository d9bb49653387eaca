import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { parseServeConfig } from '../src/node/config.js';
import type { SnapshotFileError as SnapshotFileErrorType, SnapshotSummary } from '../src/node/restore.js';
import { runAction, withClient, type Globals } from './context.js';
import { RequestFailure } from './failure.js';
import { humanBytes, printJson, write, writeLine } from './output.js';
import { formatTable } from './table.js';

// cairn snapshot save | restore | status: backups, as etcdctl/etcdutl do them.
// save writes FILE.part and renames it once the whole image is in and checked;
// restore builds a new member data directory from it (src/node/restore.ts, loaded
// only when needed: it brings the storage engine, which other commands do without).

const restoreModule = (): Promise<typeof import('../src/node/restore.js')> => import('../src/node/restore.js');

/** How long a backup may take in all (its stream must also never stall this long). */
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;

function damaged(file: string, err: SnapshotFileErrorType): RequestFailure {
  return new RequestFailure(`${file} is not a complete cairn snapshot: ${err.message}`, 'take a new one with `cairn snapshot save FILE`');
}

function summaryJson(file: string, s: SnapshotSummary): Record<string, unknown> {
  return { file, bytes: s.bytes, sha256: s.sha256, revision: s.revision, compactRevision: s.compactRevision, keys: s.keys, leases: s.leases, members: s.members.map((m) => m.name || m.id) };
}

function saveCommand(globals: Globals): Command {
  return new Command('save')
    .description('save a consistent backup of the store (GET /v1/snapshot) to FILE')
    .argument('<file>')
    .action((file: string) =>
      withClient(globals, async (client, g) => {
        const partial = `${file}.part`;
        const { SnapshotFileError, inspectSnapshot } = await restoreModule();
        try {
          await pipeline(Readable.from(client.snapshot({ timeoutMs: SNAPSHOT_TIMEOUT_MS })), createWriteStream(partial));
          const summary = await inspectSnapshot(partial);
          await rename(partial, file);
          if (g.output === 'json') printJson(summaryJson(file, summary));
          else writeLine(`Snapshot saved at ${file}: revision ${summary.revision}, ${summary.keys} keys, ${humanBytes(summary.bytes)}`);
        } catch (err) {
          await rm(partial, { force: true });
          if (err instanceof SnapshotFileError) throw new RequestFailure(`the backup received is incomplete: ${err.message}`, 'try again; a member that restarts while sending cuts it short');
          throw err;
        }
      }),
    );
}

function statusCommand(globals: Globals): Command {
  return new Command('status')
    .description('what a snapshot file holds: hash, revision, keys, size (and whether it is complete)')
    .argument('<file>')
    .action((file: string) =>
      runAction(globals, async (g) => {
        const { SnapshotFileError, inspectSnapshot } = await restoreModule();
        let s: SnapshotSummary;
        try {
          s = await inspectSnapshot(file);
        } catch (err) {
          if (err instanceof SnapshotFileError) throw damaged(file, err);
          throw err;
        }
        const hash = s.sha256.slice(0, 16);
        const members = s.members.map((m) => m.name || m.id).join(',');
        if (g.output === 'json') printJson(summaryJson(file, s));
        else if (g.output === 'table') {
          const columns = [{ title: 'HASH' }, { title: 'REVISION', align: 'right' as const }, { title: 'COMPACT REVISION', align: 'right' as const }, { title: 'TOTAL KEYS', align: 'right' as const }, { title: 'LEASES', align: 'right' as const }, { title: 'TOTAL SIZE', align: 'right' as const }, { title: 'MEMBERS' }];
          write(formatTable(columns, [[hash, s.revision, s.compactRevision, s.keys, s.leases, humanBytes(s.bytes), members]]));
        } else writeLine(`${hash}, ${s.revision}, ${s.keys}, ${humanBytes(s.bytes)}`);
      }),
    );
}

interface RestoreFlags {
  dataDir?: string;
  name: string;
  initialCluster?: string;
  initialClusterToken: string;
  initialAdvertisePeerUrls: string;
}

function restoreCommand(globals: Globals): Command {
  return new Command('restore')
    .description('make a new member data directory from a snapshot file, for a new cluster (run it once per member, same FILE and cluster flags)')
    .argument('<file>', 'a file saved by cairn snapshot save')
    .option('--data-dir <dir>', 'the new member\'s data directory: must not exist or be empty (default ./<name>.cairn)')
    .option('--name <name>', 'this member\'s name, as in --initial-cluster', 'default')
    .option('--initial-cluster <members>', 'every member of the new cluster: n1=http://h1:2380,n2=... (default <name>=<advertised peer url>)')
    .option('--initial-cluster-token <token>', 'the new cluster\'s token (use a new one)', 'cairn-cluster')
    .option('--initial-advertise-peer-urls <urls>', 'this member\'s peer URLs, as in --initial-cluster', 'http://127.0.0.1:2380')
    .action((file: string, o: RestoreFlags) =>
      runAction(globals, async (g) => {
        const config = parseServeConfig({
          name: o.name,
          dataDir: o.dataDir,
          initialCluster: o.initialCluster,
          initialClusterToken: o.initialClusterToken,
          initialAdvertisePeerUrls: o.initialAdvertisePeerUrls,
        });
        const { DataDirNotEmptyError, SnapshotFileError, restoreMember } = await restoreModule();
        const restored = await restoreMember({
          snapshotFile: file,
          dataDir: config.dataDir,
          name: config.name,
          initialCluster: config.initialCluster,
          initialClusterToken: config.initialClusterToken,
          initialAdvertisePeerUrls: config.initialAdvertisePeerUrls,
        }).catch((err: unknown) => {
          if (err instanceof SnapshotFileError) throw damaged(file, err);
          if (err instanceof DataDirNotEmptyError) {
            throw new RequestFailure(`refusing to restore into ${err.dir}: ${err.reason}`, 'choose a new --data-dir (remove the old one only if its data is not needed)');
          }
          throw err;
        });
        const s = restored.snapshot;
        if (g.output === 'json') {
          printJson({ name: config.name, memberId: restored.memberId, dataDir: restored.dataDir, revision: s.revision, keys: s.keys, members: restored.members });
          return;
        }
        writeLine(`Restored member ${config.name} (id ${restored.memberId}) of a new ${restored.members.length}-member cluster into ${restored.dataDir}: revision ${s.revision}, ${s.keys} keys.`);
        writeLine(
          `Start it with: cairn serve --name ${config.name} --data-dir ${restored.dataDir} --initial-cluster-token ${config.initialClusterToken} ` +
            `--listen-peer-urls ${config.initialAdvertisePeerUrls.join(',')} --listen-client-urls URL`,
        );
      }),
    );
}

export function snapshotCommand(globals: Globals): Command {
  const snapshot = new Command('snapshot').description('backups: save one from a running cluster, inspect it, restore a new cluster from it');
  snapshot.addCommand(saveCommand(globals));
  snapshot.addCommand(restoreCommand(globals));
  snapshot.addCommand(statusCommand(globals));
  return snapshot;
}
