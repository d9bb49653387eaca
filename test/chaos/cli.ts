// Long chaos runs from the command line:
//   npm run chaos -- --time 600 --seed S      runs of up to --run-time s each until 600 s of faults are spent
//   npm run chaos -- --seed S --scenario mixed-5 --time 120   one run again, exactly as it was scheduled
// Run i uses seed S+i and the i-th kind of the cycle (or --scenario); each prints
// its schedule, what the nemesis did, a summary line, and how to run it again.
// Exit status 1 if any run found an anomaly.

import { Command, InvalidArgumentError } from 'commander';
import { runCrashLoop, crashSummaryLine } from './crash-loop.js';
import { runScenario, summaryLine } from './scenario.js';
import { SCENARIO_KINDS, type ScenarioKind } from './scenario-kinds.js';

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const program = new Command('chaos')
  .description('fault injection against real cairn clusters: linearizability, nothing lost, watches, crash consistency')
  .option('--time <seconds>', 'total seconds of faults over all runs', integer, 120)
  .option('--run-time <seconds>', 'longest single run', integer, 120)
  .option('--seed <seed>', 'seed of the first run (default: random)', integer)
  .option('--scenario <kind>', `only this kind: ${Object.keys(SCENARIO_KINDS).join(', ')}`)
  .parse();

// Ctrl-C or a kill: exit through process.exit, whose 'exit' handler kills every member this run started (member-process.ts).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const opts = program.opts<{ time: number; runTime: number; seed?: number; scenario?: string }>();
if (opts.scenario !== undefined && !(opts.scenario in SCENARIO_KINDS)) {
  console.error(`unknown scenario ${opts.scenario}; one of ${Object.keys(SCENARIO_KINDS).join(', ')}`);
  process.exit(2);
}
const kinds: ScenarioKind[] = opts.scenario ? [opts.scenario as ScenarioKind] : ['mixed-3', 'mixed-5', 'crash-3', 'network-3', 'process-5'];
const firstSeed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
console.log(`chaos: first seed ${firstSeed}, ${opts.time} s of faults in runs of up to ${opts.runTime} s`);

let spentSeconds = 0;
let failedRuns = 0;
for (let i = 0; spentSeconds < opts.time; i++) {
  const seconds = Math.max(10, Math.min(opts.runTime, opts.time - spentSeconds));
  const kind = kinds[i % kinds.length];
  const seed = (firstSeed + i) >>> 0;
  const spec = SCENARIO_KINDS[kind];
  const rerun = `npm run chaos -- --seed ${seed} --scenario ${kind} --time ${seconds}`;
  let summary: string;
  let anomalies: readonly string[];
  let memberLogs = '';
  if (spec.crash) {
    const report = await runCrashLoop({ seed, size: spec.size, durationMs: seconds * 1000, log: (line) => console.log(line) });
    summary = crashSummaryLine(report);
    anomalies = report.anomalies;
    memberLogs = report.memberLogs;
  } else {
    const report = await runScenario({ name: kind, seed, size: spec.size, families: spec.families, faultMs: seconds * 1000, checkerBudgetMs: 30_000, log: (line) => console.log(line) });
    summary = summaryLine(report);
    anomalies = report.anomalies;
    memberLogs = report.memberLogs;
  }
  spentSeconds += seconds;
  if (anomalies.length > 0) {
    failedRuns++;
    console.log(`ANOMALIES (${anomalies.length}):\n${anomalies.map((a) => `  - ${a}`).join('\n')}`);
    console.log(`member output (last lines):\n${memberLogs}`);
  }
  console.log(summary);
  console.log(`seed ${seed}; again: ${rerun}`);
}
console.log(`chaos: ${failedRuns} run(s) with anomalies; first seed ${firstSeed}`);
process.exitCode = failedRuns > 0 ? 1 : 0;
