// The nemesis: a schedule of faults drawn from a seed, printed before the run,
// then carried out against a ChaosCluster one fault at a time (each followed by
// its healing and a quiet gap). Targets that depend on the run ("the leader")
// are resolved when the fault starts; the resolution goes into the run's log.

import type { ChaosCluster, ChaosMember } from './chaos-cluster.js';
import type { LinkFault } from './fault-proxy.js';
import { Random } from './random.js';

export type Target = 'leader' | 'follower' | 'random';

export type Fault =
  | { readonly kind: 'partition'; readonly groups: readonly (readonly string[])[] }
  | { readonly kind: 'isolate'; readonly target: Target }
  /** The leader's links to followers cut one way only: 'out' = it cannot send, 'in' = it cannot hear them. */
  | { readonly kind: 'one-way'; readonly direction: 'out' | 'in' }
  /** Two halves that reach each other only through one member. */
  | { readonly kind: 'bridge'; readonly order: readonly string[] }
  | { readonly kind: 'blackhole'; readonly target: Target }
  | { readonly kind: 'delay'; readonly delayMs: number; readonly target: Target | 'all' }
  | { readonly kind: 'flaky'; readonly lossRate: number }
  | { readonly kind: 'kill'; readonly target: Target }
  | { readonly kind: 'pause'; readonly target: Target }
  | { readonly kind: 'rolling-restart'; readonly signal: 'SIGKILL' | 'SIGTERM' };

export type FaultFamily = 'network' | 'process';

export interface NemesisStep {
  /** When the fault starts, from the start of the run. */
  readonly atMs: number;
  /** How long it lasts before it is healed (a rolling restart takes as long as it takes). */
  readonly durationMs: number;
  readonly fault: Fault;
}

export interface ScheduleOptions {
  readonly memberNames: readonly string[];
  readonly families: readonly FaultFamily[];
  readonly totalMs: number;
  /** Faults and pauses are made longer than this, so elections happen. */
  readonly electionTimeoutMs: number;
}

/** The faults of one run, from its seed. The same seed and options give the same schedule. */
export function makeSchedule(random: Random, options: ScheduleOptions): NemesisStep[] {
  const steps: NemesisStep[] = [];
  let atMs = random.int(500, 1500);
  const election = options.electionTimeoutMs;
  while (atMs < options.totalMs - 2000) {
    const family = random.pick(options.families);
    const fault = family === 'network' ? networkFault(random, options.memberNames) : processFault(random);
    const durationMs = Math.min(random.int(2 * election, 8 * election), options.totalMs - atMs - 1000);
    steps.push({ atMs, durationMs, fault });
    atMs += durationMs + random.int(election, 4 * election);
  }
  return steps;
}

function networkFault(random: Random, names: readonly string[]): Fault {
  const kinds: [Fault['kind'], number][] = [
    ['partition', 3],
    ['isolate', 2],
    ['one-way', 2],
    ['bridge', names.length >= 5 ? 1 : 0],
    ['blackhole', 1],
    ['delay', 1],
    ['flaky', 1],
  ];
  const kind = random.weighted(kinds);
  const target = (): Target => random.pick(['leader', 'leader', 'follower', 'random'] as const);
  switch (kind) {
    case 'partition': {
      const shuffled = random.shuffle(names);
      const minority = random.int(1, Math.floor((names.length - 1) / 2));
      return { kind, groups: [shuffled.slice(0, minority), shuffled.slice(minority)] };
    }
    case 'isolate':
    case 'blackhole':
      return { kind, target: target() };
    case 'one-way':
      return { kind, direction: random.pick(['out', 'in'] as const) };
    case 'bridge':
      return { kind, order: random.shuffle(names) };
    case 'delay':
      return { kind, delayMs: random.int(20, 250), target: random.pick(['all', 'leader', 'random'] as const) };
    default:
      return { kind: 'flaky', lossRate: random.int(5, 30) / 100 };
  }
}

function processFault(random: Random): Fault {
  const kind = random.weighted<Fault['kind']>([
    ['kill', 4],
    ['pause', 3],
    ['rolling-restart', 1],
  ]);
  if (kind === 'rolling-restart') return { kind, signal: random.pick(['SIGKILL', 'SIGTERM'] as const) };
  return { kind: kind as 'kill' | 'pause', target: random.pick(['leader', 'leader', 'follower', 'random'] as const) };
}

export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case 'partition':
      return `partition ${fault.groups.map((g) => `[${g.join(' ')}]`).join(' | ')}`;
    case 'isolate':
    case 'blackhole':
    case 'kill':
    case 'pause':
      return `${fault.kind} ${fault.target}`;
    case 'one-way':
      return `one-way: the leader ${fault.direction === 'out' ? 'cannot send to' : 'cannot hear'} its followers`;
    case 'bridge':
      return `bridge [${fault.order.slice(0, Math.floor(fault.order.length / 2)).join(' ')}] <- ${fault.order[Math.floor(fault.order.length / 2)]} -> [${fault.order.slice(Math.floor(fault.order.length / 2) + 1).join(' ')}]`;
    case 'delay':
      return `delay ${fault.delayMs} ms on ${fault.target === 'all' ? 'every link' : `the links of the ${fault.target}`}`;
    case 'flaky':
      return `flaky links, ${Math.round(fault.lossRate * 100)}% of chunks break their connection`;
    case 'rolling-restart':
      return `rolling restart (${fault.signal})`;
  }
}

export function formatSchedule(steps: readonly NemesisStep[]): string {
  return steps.map((s) => `  ${(s.atMs / 1000).toFixed(1).padStart(6)}s  ${describeFault(s.fault)} for ${(s.durationMs / 1000).toFixed(1)}s`).join('\n');
}

/** Carries out a schedule. `log` gets one line per action with its time and resolved targets. */
export class Nemesis {
  readonly log: string[] = [];
  private stopped = false;
  private readonly startedAt = performance.now();
  /** Steps carried out so far, by kind. */
  readonly counts = new Map<string, number>();

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly random: Random,
    private readonly steps: readonly NemesisStep[],
  ) {}

  /** Runs the schedule to its end (or until stop()); always leaves every fault healed and every process running. */
  async run(): Promise<void> {
    try {
      for (const step of this.steps) {
        if (!(await this.sleepUntil(step.atMs))) break;
        this.counts.set(step.fault.kind, (this.counts.get(step.fault.kind) ?? 0) + 1);
        const undo = await this.apply(step.fault);
        await this.sleepUntil(step.atMs + step.durationMs);
        await undo();
        this.note('healed');
      }
    } finally {
      this.cluster.heal();
      this.cluster.restoreProcesses();
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private note(line: string): void {
    this.log.push(`${((performance.now() - this.startedAt) / 1000).toFixed(2).padStart(7)}s  ${line}`);
  }

  /** Waits until `atMs` from the start; false if stopped meanwhile. */
  private async sleepUntil(atMs: number): Promise<boolean> {
    while (!this.stopped) {
      const waitMs = atMs - (performance.now() - this.startedAt);
      if (waitMs <= 0) return true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 200)));
    }
    return false;
  }

  private async resolve(target: Target): Promise<ChaosMember> {
    const members = this.cluster.members.filter((m) => m.process.running && !m.process.paused);
    const candidates = members.length > 0 ? members : [...this.cluster.members];
    if (target === 'random') return this.random.pick(candidates);
    const leader = await this.cluster.leader();
    if (target === 'leader') return leader ?? this.random.pick(candidates);
    const followers = candidates.filter((m) => m !== leader);
    return this.random.pick(followers.length > 0 ? followers : candidates);
  }

  /** Starts a fault; returns how to heal it. */
  private async apply(fault: Fault): Promise<() => Promise<void>> {
    const c = this.cluster;
    const healNetwork = async (): Promise<void> => c.heal();
    const others = (m: ChaosMember): ChaosMember[] => c.members.filter((x) => x !== m);
    switch (fault.kind) {
      case 'partition': {
        c.partition(fault.groups.map((g) => g.map((name) => c.member(name))));
        this.note(describeFault(fault));
        return healNetwork;
      }
      case 'isolate':
      case 'blackhole': {
        const m = await this.resolve(fault.target);
        const link: LinkFault = { kind: fault.kind === 'isolate' ? 'drop' : 'blackhole' };
        c.partition([[m], others(m)], link);
        this.note(`${fault.kind} ${m.name} (${fault.target})`);
        return healNetwork;
      }
      case 'one-way': {
        const leader = await this.resolve('leader');
        for (const f of others(leader)) {
          if (fault.direction === 'out') c.setLink(leader, f, { kind: 'drop' });
          else c.setLink(f, leader, { kind: 'drop' });
        }
        this.note(`${describeFault(fault)}: leader ${leader.name}`);
        return healNetwork;
      }
      case 'bridge': {
        const middle = Math.floor(fault.order.length / 2);
        const left = fault.order.slice(0, middle).map((n) => c.member(n));
        const right = fault.order.slice(middle + 1).map((n) => c.member(n));
        c.partition([left, right]);
        this.note(describeFault(fault));
        return healNetwork;
      }
      case 'delay': {
        const link: LinkFault = { kind: 'delay', delayMs: fault.delayMs };
        const centre = fault.target === 'all' ? undefined : await this.resolve(fault.target);
        for (const a of c.members) for (const b of c.members) if (a !== b && (!centre || a === centre || b === centre)) c.setLink(a, b, link);
        this.note(`${describeFault(fault)}${centre ? `: ${centre.name}` : ''}`);
        return healNetwork;
      }
      case 'flaky': {
        for (const a of c.members) for (const b of c.members) if (a !== b) c.setLink(a, b, { kind: 'flaky', lossRate: fault.lossRate });
        this.note(describeFault(fault));
        return healNetwork;
      }
      case 'kill': {
        const m = await this.resolve(fault.target);
        await m.process.kill('SIGKILL');
        this.note(`kill -9 ${m.name} (${fault.target})`);
        return async () => {
          m.process.start();
          this.note(`restart ${m.name}`);
        };
      }
      case 'pause': {
        const m = await this.resolve(fault.target);
        m.process.pause();
        this.note(`SIGSTOP ${m.name} (${fault.target})`);
        return async () => {
          m.process.resume();
          this.note(`SIGCONT ${m.name}`);
        };
      }
      case 'rolling-restart':
        await this.rollingRestart(fault.signal);
        return async () => undefined;
    }
  }

  /** Restarts every member in turn, waiting for each to be ready again (bounded) before the next. */
  private async rollingRestart(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    for (const m of this.cluster.members) {
      if (this.stopped) return;
      const stoppingAt = performance.now();
      await m.process.kill(signal);
      const stoppedMs = Math.round(performance.now() - stoppingAt);
      m.process.start();
      this.note(`rolling restart: ${m.name} (${signal}; exited after ${stoppedMs} ms)`);
      const deadline = performance.now() + 15_000;
      while (!this.stopped && performance.now() < deadline && !(await this.cluster.isReady(m))) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
