import type fc from 'fast-check';

/**
 * fast-check parameters that replay: CAIRN_FC_SEED (and CAIRN_FC_PATH, to go straight to
 * a shrunk case) from the environment when set, else a fresh seed. On failure fc.assert
 * prints the seed and path to set, e.g. `CAIRN_FC_SEED=-1234 CAIRN_FC_PATH=5:2 npx vitest run <file>`.
 */
export function replayable<T>(numRuns: number): fc.Parameters<T> {
  const seedText = process.env.CAIRN_FC_SEED;
  const path = process.env.CAIRN_FC_PATH;
  if (seedText === undefined || seedText === '') return { numRuns };
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed)) throw new Error(`CAIRN_FC_SEED must be an integer (got ${JSON.stringify(seedText)})`);
  return { numRuns, seed, ...(path ? { path } : {}) };
}
