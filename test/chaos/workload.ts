// Concurrent clients for the linearizability check: each does one request at a
// time (read, write with a unique value, compare-and-set, delete) on a few keys,
// through a member it picks at random, and records when it invoked the request,
// when the answer came, and what it was. A request whose outcome cannot be known
// (Timeout, a lost connection, our deadline) is recorded as unknown, and its
// client continues as a new process (the unknown request stays open forever).

import type { Agent } from 'undici';
import { HistoryRecorder, type OperationHandle } from '../lin/index.js';
import { call, NoAnswerError, type HttpAnswer } from './http.js';
import type { Random } from './random.js';

export type OpKind = 'get' | 'put' | 'delete' | 'cas';
export type Outcome = 'ok' | 'fail' | 'unknown';

/** One change a write makes to one key when it takes effect. */
export interface KeyChange {
  readonly key: string;
  readonly type: 'put' | 'delete';
  /** The unique value of a put. */
  readonly value?: string;
}

/** A write of any client (single-key or multi-key), for the nothing-lost check. */
export interface WriteRecord {
  readonly label: string;
  /** What it changes if it takes effect (a cas: its put; a delete: the key, if it existed). */
  readonly changes: readonly KeyChange[];
  outcome: Outcome;
  /** The revision of an acknowledged write that changed something. */
  revision?: number;
  /** An acknowledged delete that found nothing, or a cas whose compare failed: no revision of its own. */
  noEffect?: boolean;
}

export interface RecordedOp {
  readonly id: number;
  /** A process does one request at a time; a client takes a new one after an unknown outcome. */
  readonly process: number;
  readonly member: string;
  readonly kind: OpKind;
  readonly key: string;
  readonly value?: string;
  /** For a cas: the value the key must hold (null = absent). */
  readonly expected?: string | null;
  readonly invokeMs: number;
  completeMs?: number;
  outcome?: Outcome;
  /** An ok get: the value read (null = absent). An ok cas: whether it applied. */
  readValue?: string | null;
  succeeded?: boolean;
  /** An ok delete: how many keys it removed. */
  deleted?: number;
  reason?: string;
}

export interface WorkloadTarget {
  readonly name: string;
  readonly clientUrl: string;
}

export interface WorkloadOptions {
  readonly clients: number;
  /** Registers in use at once; each is retired after opsPerKey operations so a key's history stays checkable. */
  readonly keySlots: number;
  readonly opsPerKey: number;
  readonly requestTimeoutMs: number;
  readonly agent: Agent;
  readonly random: Random;
  /** Prefix of every key (the watchers watch it). */
  readonly prefix: string;
  /** Makes values unique across runs on the same data. */
  readonly tag: string;
}

/** Hands out keys: `opsPerKey` operations each, then the slot moves on to a fresh key. */
class KeySlots {
  private readonly generation: number[];
  private readonly used: number[];
  constructor(
    private readonly prefix: string,
    slots: number,
    private readonly opsPerKey: number,
  ) {
    this.generation = new Array<number>(slots).fill(0);
    this.used = new Array<number>(slots).fill(0);
  }
  next(random: Random): string {
    const slot = random.int(0, this.generation.length - 1);
    if (this.used[slot] >= this.opsPerKey) {
      this.generation[slot]++;
      this.used[slot] = 0;
    }
    this.used[slot]++;
    return `${this.prefix}s${slot}-g${this.generation[slot]}`;
  }
}

export class Workload {
  readonly ops: RecordedOp[] = [];
  readonly writes: WriteRecord[] = [];
  /** The same operations for the linearizability checker (test/lin). */
  readonly history = new HistoryRecorder();
  /** Answers the workload could not classify (a 400, a 500): each is an anomaly. */
  readonly oddities: string[] = [];
  private stopped = false;
  private nextProcess = 0;
  private readonly keys: KeySlots;
  /** The write record of each write op, by op id. */
  private readonly writeOf = new Map<number, WriteRecord>();
  private readonly startedAt = performance.now();

  constructor(
    private readonly targets: () => readonly WorkloadTarget[],
    private readonly options: WorkloadOptions,
  ) {
    this.keys = new KeySlots(options.prefix, options.keySlots, options.opsPerKey);
  }

  /** Runs every client until stop(); resolves once each has finished its request in flight. */
  async run(): Promise<void> {
    const clients = Array.from({ length: this.options.clients }, (_, i) => this.runClient(i, this.options.random.fork(`client-${i}`)));
    await Promise.all(clients);
  }

  stop(): void {
    this.stopped = true;
  }

  private now(): number {
    return performance.now() - this.startedAt;
  }

  private async runClient(client: number, random: Random): Promise<void> {
    let process = this.nextProcess++;
    let sequence = 0;
    const lastSeen = new Map<string, string | null>();
    while (!this.stopped) {
      const target = random.pick(this.targets());
      const key = this.keys.next(random);
      const kind = random.weighted<OpKind>([
        ['get', 35],
        ['put', 30],
        ['cas', 25],
        ['delete', 10],
      ]);
      const value = kind === 'put' || kind === 'cas' ? `${this.options.tag}-c${client}-${sequence++}` : undefined;
      const expected = kind === 'cas' ? (lastSeen.get(key) ?? null) : undefined;
      const op: RecordedOp = { id: this.ops.length, process, member: target.name, kind, key, value, expected, invokeMs: this.now() };
      this.ops.push(op);
      const write = this.writeRecord(op);
      const handle = this.history.invoke(process, linRequest(op));
      await this.perform(op, target);
      op.completeMs = this.now();
      this.settleHistory(handle, op);
      if (write) this.settleWrite(write, op);
      // A member that refused the connection is down: do not spin on it.
      if (op.outcome === 'fail' && op.reason?.startsWith('not-sent')) await new Promise((resolve) => setTimeout(resolve, random.int(10, 50)));
      if (op.outcome === 'unknown') process = this.nextProcess++;
      if (op.outcome === 'ok') {
        if (kind === 'get') lastSeen.set(key, op.readValue ?? null);
        if (kind === 'put' || (kind === 'cas' && op.succeeded)) lastSeen.set(key, value!);
        if (kind === 'delete') lastSeen.set(key, null);
      }
    }
  }

  private writeRecord(op: RecordedOp): WriteRecord | undefined {
    if (op.kind === 'get') return undefined;
    const change: KeyChange = op.kind === 'delete' ? { key: op.key, type: 'delete' } : { key: op.key, type: 'put', value: op.value };
    const record: WriteRecord = { label: `op #${op.id} p${op.process} ${op.kind} ${op.key}${op.value ? `=${op.value}` : ''} via ${op.member}`, changes: [change], outcome: 'unknown' };
    this.writes.push(record);
    this.writeOf.set(op.id, record);
    return record;
  }

  private settleHistory(handle: OperationHandle, op: RecordedOp): void {
    if (op.outcome === 'fail') return this.history.fail(handle);
    if (op.outcome === 'unknown') return this.history.unknown(handle);
    if (op.kind === 'get') return this.history.ok(handle, op.readValue ?? null);
    if (op.kind === 'cas') return this.history.ok(handle, op.succeeded === true);
    if (op.kind === 'delete') return this.history.ok(handle, op.deleted !== undefined ? op.deleted > 0 : undefined);
    this.history.ok(handle);
  }

  private settleWrite(write: WriteRecord, op: RecordedOp): void {
    write.outcome = op.outcome!;
    if (op.outcome === 'ok' && op.kind === 'cas' && !op.succeeded) write.noEffect = true;
  }

  /** Sends the request and fills in the op's outcome. Never throws. */
  private async perform(op: RecordedOp, target: WorkloadTarget): Promise<void> {
    const path = `${target.clientUrl}/v1/kv/${encodeURIComponent(op.key)}`;
    let answer: HttpAnswer;
    try {
      answer = await call(op.kind === 'cas' ? `${target.clientUrl}/v1/txn` : path, {
        method: op.kind === 'get' ? 'GET' : op.kind === 'put' ? 'PUT' : op.kind === 'delete' ? 'DELETE' : 'POST',
        body: op.kind === 'put' ? op.value : op.kind === 'cas' ? JSON.stringify(casBody(op)) : undefined,
        headers: op.kind === 'cas' ? { 'content-type': 'application/json' } : undefined,
        timeoutMs: this.options.requestTimeoutMs,
        agent: this.options.agent,
      });
    } catch (error) {
      if (!(error instanceof NoAnswerError)) throw error;
      // A read that got no answer constrains nothing: it is as if it never happened.
      op.outcome = op.kind === 'get' || error.noAnswer.kind === 'not-sent' ? 'fail' : 'unknown';
      op.reason = error.message;
      return;
    }
    this.classify(op, answer);
  }

  private classify(op: RecordedOp, answer: HttpAnswer): void {
    const code = (answer.body.error as { code?: string } | undefined)?.code;
    op.reason = code ?? String(answer.status);
    if (answer.status === 200) {
      op.outcome = 'ok';
      const revision = (answer.body.header as { revision?: number } | undefined)?.revision;
      if (op.kind === 'get') op.readValue = (answer.body.kv as { value: string }).value;
      if (op.kind === 'cas') op.succeeded = answer.body.succeeded === true;
      if (op.kind === 'delete') op.deleted = answer.body.deleted as number;
      const write = this.writeOf.get(op.id);
      if (write && revision !== undefined) {
        write.revision = revision;
        if (op.kind === 'delete' && answer.body.deleted === 0) write.noEffect = true;
      }
      return;
    }
    if (op.kind === 'get' && answer.status === 404 && code === 'KeyNotFound') {
      op.outcome = 'ok';
      op.readValue = null;
      return;
    }
    // 503 Unavailable: the member refused before proposing (src/node/raft-node.ts: the core did not accept it,
    // or the member is closing, or too many requests wait), so the write never entered the log.
    // 504 Timeout and anything unexpected (a 500 after a fatal error): the outcome is unknown.
    if (answer.status === 503 && code === 'Unavailable') op.outcome = 'fail';
    else op.outcome = op.kind === 'get' ? 'fail' : 'unknown';
    if (answer.status !== 503 && answer.status !== 504) this.oddities.push(`op #${op.id} ${op.kind} ${op.key} via ${op.member}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  }
}

function linRequest(op: RecordedOp): Parameters<HistoryRecorder['invoke']>[1] {
  switch (op.kind) {
    case 'get':
      return { kind: 'get', key: op.key };
    case 'put':
      return { kind: 'put', key: op.key, value: op.value! };
    case 'delete':
      return { kind: 'delete', key: op.key };
    case 'cas':
      return { kind: 'cas', key: op.key, expected: op.expected ?? null, value: op.value! };
  }
}

/** A value-based compare-and-set as a transaction: absent is "version = 0". */
function casBody(op: RecordedOp): unknown {
  const compare = op.expected === null ? { key: op.key, target: 'version', op: '=', value: 0 } : { key: op.key, target: 'value', op: '=', value: op.expected };
  return { compare: [compare], success: [{ put: { key: op.key, value: op.value } }] };
}
