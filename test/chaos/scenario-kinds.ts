// The named kinds of chaos run, shared by the vitest files and the command line.

import type { FaultFamily } from './nemesis.js';

export interface ScenarioKindSpec {
  readonly size: number;
  readonly families: readonly FaultFamily[];
  /** A crash loop (kill -9 at random moments under writes) rather than a nemesis schedule. */
  readonly crash?: boolean;
}

const KINDS = {
  'network-3': { size: 3, families: ['network'] },
  'network-5': { size: 5, families: ['network'] },
  'process-3': { size: 3, families: ['process'] },
  'process-5': { size: 5, families: ['process'] },
  'mixed-3': { size: 3, families: ['network', 'process'] },
  'mixed-5': { size: 5, families: ['network', 'process'] },
  'crash-3': { size: 3, families: [], crash: true },
  'crash-1': { size: 1, families: [], crash: true },
} as const satisfies Record<string, ScenarioKindSpec>;

export type ScenarioKind = keyof typeof KINDS;
export const SCENARIO_KINDS: Readonly<Record<ScenarioKind, ScenarioKindSpec>> = KINDS;
