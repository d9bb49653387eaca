import type { CommittedCommand, StateMachine } from '../../../src/node/raft-node.js';
import { sublevel, type BatchOp, type MemberDb, type SubDb } from '../../../src/storage/member-db.js';

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const STATE_KEY = bytes('state');

export interface ListState {
  appliedIndex: number;
  values: string[];
}

/**
 * A list of strings as the replicated state, kept durably in one key: enough to see
 * order, durability and snapshots. `beforeRestoreWrite` runs once an image is read and
 * before it is written (a test can make the restore fail there).
 */
export class ListMachine implements StateMachine {
  appliedIndex = 0;
  values: string[] = [];
  /** Images restored since this object was made. */
  restores = 0;
  private constructor(
    private readonly db: MemberDb,
    private readonly section: SubDb,
    private readonly beforeRestoreWrite: (image: ListState) => void,
  ) {}

  static async open(db: MemberDb, beforeRestoreWrite: (image: ListState) => void = () => undefined): Promise<ListMachine> {
    const machine = new ListMachine(db, sublevel(db, 'test-list'), beforeRestoreWrite);
    const raw = await machine.section.get(STATE_KEY);
    if (raw) Object.assign(machine, JSON.parse(text(raw)) as ListState);
    return machine;
  }

  async apply(commands: readonly CommittedCommand[], extraOps: BatchOp[]): Promise<readonly unknown[]> {
    const results: unknown[] = [];
    const values = [...this.values];
    let applied = this.appliedIndex;
    for (const c of commands) {
      if (c.index <= applied) {
        results.push(undefined);
        continue;
      }
      applied = c.index;
      if (c.command) values.push(text(c.command));
      results.push(c.command ? values.length : undefined);
    }
    const state = bytes(JSON.stringify({ appliedIndex: applied, values }));
    await this.db.batch([...extraOps, { type: 'put', sublevel: this.section, key: STATE_KEY, value: state }]);
    this.values = values;
    this.appliedIndex = applied;
    return results;
  }

  async *snapshot(): AsyncIterable<Uint8Array> {
    yield bytes(JSON.stringify({ appliedIndex: this.appliedIndex, values: this.values }));
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c));
    const image = JSON.parse(Buffer.concat(parts).toString('utf8')) as ListState;
    this.beforeRestoreWrite(image);
    await this.section.put(STATE_KEY, bytes(JSON.stringify(image)));
    this.appliedIndex = image.appliedIndex;
    this.values = image.values;
    this.restores++;
  }
}
