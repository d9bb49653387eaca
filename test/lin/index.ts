// The linearizability checker, for cairn's fault tests (test/chaos).
//
// Record what the clients saw, then check it:
//
//   const h = new HistoryRecorder();                     // cairn-kv model, monotonic clock
//   const op = h.invoke(clientId, { kind: 'get', key });  // just before sending the request
//   //   other requests: { kind: 'put', key, value }, { kind: 'delete', key },
//   //   { kind: 'cas', key, expected, value }   (expected null: "only if absent")
//   //   A cas compares values: a txn with a `value =` compare, or ifVersion=0 for null.
//   //   ifModRevision=R also fits if puts are unique: R then names the one put of `expected`.
//   h.ok(op, result);  // get: the value, or null for 404 KeyNotFound; cas: true, or false for
//                      // 412 CompareFailed (an answer, not a failure); delete: optionally
//                      // deleted > 0; put: nothing
//   h.fail(op);        // certainly did not take effect (e.g. 400 InvalidArgument)
//   h.unknown(op);     // 504 Timeout, connection lost, any answer you are unsure of: it may take
//                      // effect at any later time, or never. Always sound, only weaker than fail.
//   const result = checkHistory(h.history(), { budgetMs: 10_000 });
//   // result: { verdict: 'linearizable' | 'not-linearizable' | 'unknown', keys, ops,
//   //           failingKey?, unknownKeys?, explanation? }
//   if (result.verdict !== 'linearizable') throw new Error(result.explanation);
//
// Rules the checker applies:
// - Each key is checked on its own (a history is linearizable iff every key's
//   sub-history is), with its own budget: `budgetMs` of search time and
//   `statesMax` remembered configurations. A key out of budget makes the
//   verdict 'unknown' (unless another key is not linearizable): never a guess.
// - A failed operation did not happen and is ignored. An unknown one returns
//   at +Infinity: it may take effect at any point after its invocation, or
//   never. A get of unknown outcome constrains nothing.
// - Two events at the same time are concurrent.
// - Only linearizable reads belong in the history: not `serializable=true`,
//   which may be stale by design.
// - Put unique values (e.g. `${clientId}-${counter}`): a read then names the
//   one write it saw, which keeps the search small and the explanation clear.
// - Operations of one client should not overlap: give each concurrent request
//   its own process id (the checker does not need it; explanations show it).
//
// The explanation of a 'not-linearizable' verdict names the key, the last
// operations of the longest legal order found, the value they leave, and the
// operation that then could not take effect, with the reason.

export { checkHistory, type CheckOptions, type CheckResult } from './checker.js';
export type { History, Operation, OperationKind, ProcessId, Request, Result, Status, Value } from './history.js';
export { cairnKvModel, courseKvModel, registerModel, type Model } from './model.js';
export { parseEdnHistory, parseHistory, parseJepsenLog, HistoryParseError } from './parse.js';
export { HistoryRecorder, type OperationHandle, type RecorderOptions } from './recorder.js';
