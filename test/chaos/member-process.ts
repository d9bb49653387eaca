// One `cairn serve` process under the test's control: started, killed, paused
// and resumed by its pid, its output kept in a bounded ring for failure reports.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sep } from 'node:path';

/** The built CLI: next to this file's build when running from dist/, else in dist/ (vitest runs the sources). */
export const CLI_MAIN = fileURLToPath(
  new URL(fileURLToPath(import.meta.url).includes(`${sep}dist${sep}`) ? '../../cli/main.js' : '../../dist/cli/main.js', import.meta.url),
);

/** Lines of member output kept for a failure report. */
const LOG_LINES_MAX = 400;
/** Error lines (pino level 50 and up) are kept apart, so a report shows them however long ago they came. */
const ERROR_LINES_MAX = 40;

/** Every pid this module started and has not seen exit: killed if the test process exits first. */
const livePids = new Set<number>();
process.once('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when the test sent the signal that ended it. */
  readonly expected: boolean;
  readonly atMs: number;
}

/** A member process; `start` may be called again after it exited (a restart on the same data). */
export class MemberProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectingExit = false;
  private pausedNow = false;
  readonly logs: string[] = [];
  /** Exits the test did not cause: a member that dies by itself is an anomaly. */
  readonly unexpectedExits: ProcessExit[] = [];
  startCount = 0;

  constructor(
    readonly name: string,
    private readonly args: () => readonly string[],
    private readonly onExit: (exit: ProcessExit) => void = () => undefined,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get paused(): boolean {
    return this.pausedNow;
  }

  start(): void {
    if (this.child) throw new Error(`${this.name} is already running (pid ${this.child.pid})`);
    const child = spawn(process.execPath, [CLI_MAIN, ...this.args()], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error(`${this.name}: spawn failed`);
    const pid = child.pid;
    livePids.add(pid);
    this.child = child;
    this.startCount++;
    this.expectingExit = false;
    this.pausedNow = false;
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.keepLine(line);
      });
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        livePids.delete(pid);
        if (this.child === child) this.child = undefined;
        const exit = { code, signal, expected: this.expectingExit, atMs: Date.now() };
        this.keepLine(`-- exited: code ${code} signal ${signal}${exit.expected ? '' : ' (not caused by the test)'}`);
        if (!exit.expected) this.unexpectedExits.push(exit);
        this.onExit(exit);
        resolve();
      });
    });
  }

  /** Sends a signal by pid and, for a fatal one, waits for the exit (bounded: SIGKILL always ends a process). */
  async kill(signal: NodeJS.Signals = 'SIGKILL', graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    this.expectingExit = true;
    // A stopped process handles SIGTERM only once continued.
    if (this.pausedNow) this.resume();
    process.kill(child.pid, signal);
    const timer = setTimeout(() => {
      if (child.pid !== undefined && this.child === child) process.kill(child.pid, 'SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  pause(): void {
    if (!this.child?.pid || this.pausedNow) return;
    process.kill(this.child.pid, 'SIGSTOP');
    this.pausedNow = true;
  }

  resume(): void {
    if (!this.child?.pid || !this.pausedNow) return;
    process.kill(this.child.pid, 'SIGCONT');
    this.pausedNow = false;
  }

  /** The last lines of output, for a report, after every error line seen (the first ERROR_LINES_MAX). */
  tail(lines = 40): string {
    return [...this.errorLogs.map((line) => `ERROR ${line}`), ...this.logs.slice(-lines)].map((line) => `[${this.name}] ${line}`).join('\n');
  }

  private readonly errorLogs: string[] = [];

  private keepLine(line: string): void {
    if (/"level":(50|60)/.test(line) && this.errorLogs.length < ERROR_LINES_MAX) this.errorLogs.push(line);
    this.logs.push(line);
    if (this.logs.length > LOG_LINES_MAX) this.logs.splice(0, this.logs.length - LOG_LINES_MAX);
  }
}
