export * from './types.js';
export { RaftInvariantError, assert } from './assert.js';
export { validateConfig, type RaftConfig, type RaftConfigInput } from './config.js';
export { SeededRandom, type RandomSource } from './random.js';
export {
  MemoryStorage,
  LogCompactedError,
  LogUnavailableError,
  SnapshotOutOfDateError,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  emptySnapshot,
  type RaftStorage,
} from './storage.js';
export { encodeConfChange, decodeConfChange } from './conf-change.js';
export { RawNode, bootstrapEntries, bootstrapStorage, type Status, type ProgressStatus } from './raw-node.js';
export type { ProgressState } from './progress.js';
