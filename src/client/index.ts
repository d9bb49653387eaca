// The client library users import (`import { Client } from 'cairn'`).
// It imports nothing of the server side.

export { Client } from './client.js';
export { TxnBuilder, compare, op } from './txn-builder.js';
export { KeyValue, type Bytes } from './key-value.js';
export {
  AbortedError,
  CairnClientError,
  ClientClosedError,
  CompactedError,
  CompareFailedError,
  ConnectionError,
  InternalError,
  InvalidArgumentError,
  KeyNotFoundError,
  NoSpaceError,
  PermissionDeniedError,
  SERVER_ERROR_STATUS,
  TimeoutError,
  TooLargeError,
  UnauthenticatedError,
  UnavailableError,
  type ClientOnlyErrorCode,
  type EndpointFailure,
  type ErrorCode,
  type ServerErrorCode,
} from './errors.js';
export type * from './types.js';
export type { LeaseKeepAlive, LeaseKeepAliveOptions } from './lease-keep-alive.js';
