// The simulator from the command line:
//   npm run sim -- --seed S            replay one run, printing its message trace on failure
//   npm run sim -- --runs N [--from S] [--steps K]   a deep batch of runs with consecutive seeds
import { Command, InvalidArgumentError } from 'commander';
import { runSimulation, SimulationFailure } from './random-run.js';

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const program = new Command('sim')
  .description('deterministic Raft simulation: random runs under faults, checked after every step')
  .option('--seed <seed>', 'replay exactly this run', integer)
  .option('--runs <count>', 'number of runs in a batch', integer, 1000)
  .option('--from <seed>', 'first seed of a batch (default: random)', integer)
  .option('--steps <count>', 'actions per run before healing', integer, 1500)
  .option('--verbose', 'print per-run statistics')
  .parse();

const opts = program.opts<{ seed?: number; runs: number; from?: number; steps: number; verbose?: boolean }>();

if (opts.seed !== undefined) {
  try {
    const stats = runSimulation({ seed: opts.seed, steps: opts.steps, traceMessages: true });
    console.log(`seed ${opts.seed}: ok`, stats);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
} else {
  const from = opts.from ?? Math.floor(Math.random() * 2 ** 31);
  const started = process.hrtime.bigint();
  let failures = 0;
  let committed = 0;
  for (let i = 0; i < opts.runs; i++) {
    const seed = (from + i) >>> 0;
    try {
      const stats = runSimulation({ seed, steps: opts.steps });
      committed += stats.committed;
      if (opts.verbose) console.log(JSON.stringify(stats));
    } catch (err) {
      failures++;
      console.error(err instanceof SimulationFailure ? err.message.split('\n--- last events ---')[0] : err);
      if (failures >= 10) break;
    }
    if ((i + 1) % 1000 === 0) console.log(`${i + 1} runs, ${failures} failed`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`${opts.runs} runs of ${opts.steps} steps from seed ${from}: ${failures} failed, ${committed} entries committed in all, ${seconds.toFixed(1)} s`);
  process.exitCode = failures > 0 ? 1 : 0;
}
