import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../cluster/local-cluster.js';
import { parseServeConfig } from '../../../src/node/config.js';
import { openMember, type RunningMember } from '../../../src/server/member.js';

/** A one-member cluster in this process, listening on free loopback ports (its peer listener is reachable over a socket). */
export interface ListeningMember {
  readonly member: RunningMember;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly clusterToken: string;
  /** Closes the member and removes its directory. */
  close(): Promise<void>;
}

export async function startListeningMember(): Promise<ListeningMember> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-hostile-'));
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const clusterToken = 'hostile-test';
  let member: RunningMember | undefined;
  const close = async (): Promise<void> => {
    await member?.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const config = parseServeConfig({
      name: 'solo',
      dataDir: dir,
      listenClientUrls: clientUrl,
      listenPeerUrls: peerUrl,
      initialClusterToken: clusterToken,
      heartbeatInterval: '10',
      electionTimeout: '100',
      logLevel: 'error',
    });
    member = await openMember(config, { listen: true });
    const deadline = Date.now() + 10_000;
    while ((await member.clientApp.inject({ url: '/readyz' })).statusCode !== 200) {
      if (Date.now() > deadline) throw new Error('listening member not ready within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { member, clientUrl, peerUrl, clusterToken, close };
}
