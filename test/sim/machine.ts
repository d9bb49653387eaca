import type { Entry, LogIndex } from '../../src/raft/index.js';

/**
 * The simulated application: it remembers only how far it has applied and a
 * hash chained over every applied entry, so two members that applied the same
 * sequence hold the same hash. It is "durable": a crash keeps it, exactly as
 * cairn's state machine keeps its applied index in the same batch as its data.
 */
export interface MachineState {
  readonly applied: LogIndex;
  readonly hash: number;
}

export const EMPTY_MACHINE: MachineState = { applied: 0, hash: 0 };

/** FNV-1a over the entry, chained on the previous hash. */
export function chainHash(previous: number, entry: Entry): number {
  let h = (previous ^ 0x811c9dc5) >>> 0;
  const mix = (byte: number): void => {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const n of [entry.index, entry.term, entry.type === 'normal' ? 0 : 1]) {
    for (let shift = 0; shift < 32; shift += 8) mix((n >>> shift) & 0xff);
  }
  for (const byte of entry.data) mix(byte);
  return h;
}

export function applyEntry(state: MachineState, entry: Entry): MachineState {
  return { applied: entry.index, hash: chainHash(state.hash, entry) };
}

export function encodeMachine(state: MachineState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state));
}

export function decodeMachine(data: Uint8Array): MachineState {
  const raw = JSON.parse(new TextDecoder().decode(data)) as MachineState;
  return { applied: raw.applied, hash: raw.hash };
}
