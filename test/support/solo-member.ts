import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseServeConfig, type ServeFlags } from '../../src/node/config.js';
import { openMember, type RunningMember } from '../../src/server/member.js';

/** A real one-member stack in a temporary directory, not listening (use clientApp.inject or listen on port 0). */
export interface SoloMember {
  readonly member: RunningMember;
  /** Closes the member and removes its directory. */
  close(): Promise<void>;
}

/** Opens a one-member cluster with fast timeouts and waits (with a deadline) until /readyz answers 200. */
export async function startSoloMember(flags: ServeFlags = {}): Promise<SoloMember> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-solo-'));
  const config = parseServeConfig({ name: 'solo', dataDir: dir, heartbeatInterval: '10', electionTimeout: '100', logLevel: 'error', ...flags });
  const member = await openMember(config, { listen: false });
  const close = async (): Promise<void> => {
    await member.close();
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while ((await member.clientApp.inject({ url: '/readyz' })).statusCode !== 200) {
    if (Date.now() > deadline) {
      await close();
      throw new Error('one-member cluster not ready within 10 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { member, close };
}
