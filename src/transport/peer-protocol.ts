// The HTTP contract between members, shared by the sender (peer-sender.ts) and the
// receiver (peer-routes.ts).
//
// POST /raft/messages
//   body: one batch of messages, codec.ts format; answers 204 once the batch is queued.
// POST /raft/snapshot
//   header x-cairn-message: base64 of a one-message batch (codec.ts) holding the 'snap'
//   message with its snapshot metadata; the body is the snapshot's data, streamed
//   (chunked transfer encoding); answers 204 once the receiver has kept the snapshot.
//
// Both carry content-type application/octet-stream and:
//   x-cairn-cluster  the cluster token (--initial-cluster-token)
//   x-cairn-from     the sending member's id
//   x-cairn-to       the receiving member's id
// A refusal is 4xx with {"error":{"code","message"}} (errors.ts, PEER_REFUSALS).

export const MESSAGES_PATH = '/raft/messages';
export const SNAPSHOT_PATH = '/raft/snapshot';
export const PEER_CONTENT_TYPE = 'application/octet-stream';

export const HEADER_CLUSTER = 'x-cairn-cluster';
export const HEADER_FROM = 'x-cairn-from';
export const HEADER_TO = 'x-cairn-to';
export const HEADER_MESSAGE = 'x-cairn-message';

/** Printable ASCII only, so a value can travel in an HTTP header unchanged. */
export function isHeaderSafe(value: string): boolean {
  return value.length > 0 && /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value);
}
