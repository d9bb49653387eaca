// A client writing several keys in one transaction (one revision, several
// events), so watchers can be checked to deliver a transaction's events
// together. Its writes join the nothing-lost check; they are not part of the
// linearizability history (the checker's registers are single keys).

import type { Agent } from 'undici';
import { call, NoAnswerError } from './http.js';
import type { Random } from './random.js';
import type { KeyChange, WorkloadTarget, WriteRecord } from './workload.js';

export interface MultiWriterOptions {
  readonly prefix: string;
  readonly keyCount: number;
  readonly requestTimeoutMs: number;
  readonly agent: Agent;
  readonly random: Random;
  readonly tag: string;
}

export class MultiWriter {
  readonly writes: WriteRecord[] = [];
  readonly oddities: string[] = [];
  private stopped = false;

  constructor(
    private readonly targets: () => readonly WorkloadTarget[],
    private readonly options: MultiWriterOptions,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    const { random, prefix } = this.options;
    let sequence = 0;
    while (!this.stopped) {
      const target = random.pick(this.targets());
      const count = random.int(2, 3);
      const keys = random.shuffle(Array.from({ length: this.options.keyCount }, (_, i) => `${prefix}k${i}`)).slice(0, count);
      const changes: KeyChange[] = keys.map((key) => ({ key, type: 'put', value: `${this.options.tag}-m${sequence++}` }));
      const record: WriteRecord = { label: `txn ${changes.map((c) => `${c.key}=${c.value}`).join(' ')} via ${target.name}`, changes, outcome: 'unknown' };
      this.writes.push(record);
      try {
        const answer = await call(`${target.clientUrl}/v1/txn`, {
          method: 'POST',
          body: JSON.stringify({ success: changes.map((c) => ({ put: { key: c.key, value: c.value } })) }),
          headers: { 'content-type': 'application/json' },
          timeoutMs: this.options.requestTimeoutMs,
          agent: this.options.agent,
        });
        const code = (answer.body.error as { code?: string } | undefined)?.code;
        if (answer.status === 200) {
          record.outcome = 'ok';
          record.revision = (answer.body.header as { revision: number }).revision;
        } else if (answer.status === 503 && code === 'Unavailable') {
          record.outcome = 'fail';
        } else if (answer.status !== 504) {
          this.oddities.push(`${record.label}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        }
      } catch (error) {
        if (!(error instanceof NoAnswerError)) throw error;
        if (error.noAnswer.kind === 'not-sent') record.outcome = 'fail';
      }
      // Paced: a handful of transactions per second is plenty for the watchers.
      await new Promise((resolve) => setTimeout(resolve, random.int(20, 120)));
    }
  }
}
