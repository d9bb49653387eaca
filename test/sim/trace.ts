import type { Message } from '../../src/raft/index.js';

/** A bounded ring of readable lines: what happened, in order, for scenario traces and failure reports. */
export class Trace {
  private lines: string[] = [];
  private droppedCount = 0;

  constructor(private readonly maxLines: number) {}

  add(time: number, line: string): void {
    if (this.maxLines <= 0) return;
    this.lines.push(`[t=${time}] ${line}`);
    if (this.lines.length > this.maxLines) {
      this.lines.shift();
      this.droppedCount++;
    }
  }

  /** The lines kept, oldest first. */
  text(): string {
    const head = this.droppedCount > 0 ? [`... ${this.droppedCount} earlier lines not kept`] : [];
    return head.concat(this.lines).join('\n');
  }

  clear(): void {
    this.lines = [];
    this.droppedCount = 0;
  }
}

/** One line per message, in the spirit of etcd-io/raft's test traces. */
export function describeMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  switch (m.type) {
    case 'app':
      parts.push(`prev=(${m.index},${m.logTerm}) commit=${m.commit}`);
      if (m.entries.length > 0) parts.push(`entries=[${m.entries.map((e) => `${e.index}@${e.term}`).join(' ')}]`);
      break;
    case 'appResp':
      parts.push(m.reject ? `reject index=${m.index} hint=(${m.rejectHint},${m.logTerm})` : `index=${m.index}`);
      break;
    case 'vote':
    case 'preVote':
      parts.push(`last=(${m.index},${m.logTerm})`);
      break;
    case 'voteResp':
    case 'preVoteResp':
      parts.push(m.reject ? 'rejected' : 'granted');
      break;
    case 'heartbeat':
      parts.push(`commit=${m.commit}`);
      break;
    case 'snap':
      parts.push(`snapshot=(${m.snapshot?.metadata.index},${m.snapshot?.metadata.term})`);
      break;
    case 'readIndexResp':
      parts.push(`index=${m.index}`);
      break;
  }
  return parts.join(' ');
}
