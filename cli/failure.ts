import { CommanderError, InvalidArgumentError as CommanderInvalidArgument } from 'commander';
import { CairnClientError, CompactedError, ConnectionError } from '../src/client/index.js';
import { CairnError } from '../src/errors.js';

// What the cairn command says when something goes wrong, and its exit status:
// 0 success, 1 a failed request, 2 bad usage (API.md). A message names what
// failed and where; a hint line says what to try.

/** Bad usage found by a command itself (a missing value, a malformed file): exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A request that failed in a way the command explains itself: exit status 1, the message as is. */
export class RequestFailure extends Error {
  override readonly name = 'RequestFailure';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface Failure {
  readonly exitCode: 1 | 2;
  readonly message: string;
  readonly hint?: string;
}

/** Why a connection failed, in words: the first errno-like code found down the cause chain. */
export function connectionReason(error: unknown): string {
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused (nothing listens there)',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    ECONNRESET: 'connection reset',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
    UND_ERR_SOCKET: 'connection closed by the other side',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: self-signed certificate (give its CA with --cacert)',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: certificate not trusted (give its CA with --cacert)',
    SELF_SIGNED_CERT_IN_CHAIN: 'TLS: certificate not trusted (give its CA with --cacert)',
    ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: the certificate does not name this host',
    EPROTO: 'TLS/protocol error (https to an http endpoint, or the reverse?)',
  };
  let last = '';
  for (let e: unknown = error, depth = 0; e && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && reasons[code]) return reasons[code];
    if (e instanceof Error) last = e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return last || String(error);
}

const ENDPOINTS_HINT = 'give the cluster\'s client URLs with --endpoints URL[,URL...] or CAIRN_ENDPOINTS';

function describeClientError(err: CairnClientError, endpoints: readonly string[]): Failure {
  const where = endpoints.join(',');
  switch (err.code) {
    case 'Connection': {
      const causes = (err as ConnectionError).causes;
      const hint = `is cairn running there? ${ENDPOINTS_HINT} (for example --endpoints http://127.0.0.1:2379)`;
      if (causes.length === 1 && endpoints.length === 1) return { exitCode: 1, message: `cannot reach ${causes[0].endpoint}: ${connectionReason(causes[0].error)}`, hint };
      const detail = causes.length > 0 ? causes.map((c) => `${c.endpoint}: ${connectionReason(c.error)}`).join('; ') : err.message;
      return { exitCode: 1, message: `cannot reach any of ${where} (${detail})`, hint };
    }
    case 'Unavailable':
      return { exitCode: 1, message: `the cluster at ${where} cannot serve this now: ${err.message}`, hint: 'it may have no leader (an election, or too few members up): retry in a moment; `cairn endpoint health` shows each member' };
    case 'Timeout':
      return {
        exitCode: 1,
        message: `timed out (${where}): ${err.message}`,
        hint: err.outcomeUnknown ? 'a write may or may not have been applied: read it back before retrying; --timeout MS waits longer' : '--timeout MS waits longer; `cairn endpoint health` shows each member',
      };
    case 'CompareFailed':
      return { exitCode: 1, message: `${err.message} (asked ${where})`, hint: 'the key is not as expected: read it (cairn get KEY -o json) and retry with its current version or revision' };
    case 'Compacted':
      return { exitCode: 1, message: `${err.message} (asked ${where})`, hint: `history before revision ${(err as CompactedError).compactRevision} is gone: use --rev ${(err as CompactedError).compactRevision} or later` };
    case 'InvalidArgument':
      return { exitCode: 2, message: `${err.message} (refused by ${where})` };
    case 'KeyNotFound':
      return { exitCode: 1, message: `${err.message} (asked ${where})`, hint: '`cairn lease list` and `cairn member list` show the ids that exist' };
    case 'TooLarge':
      return { exitCode: 1, message: `${err.message} (asked ${where})`, hint: 'members refuse requests past --max-request-bytes' };
    case 'NoSpace':
      return { exitCode: 1, message: `${err.message} (asked ${where})`, hint: 'the data quota is full: delete keys and compact (`cairn compact REV`), or raise --quota-backend-bytes' };
    case 'Unauthenticated':
    case 'PermissionDenied':
      return { exitCode: 1, message: `${err.message} (asked ${where})`, hint: 'check the credentials and TLS flags (--cacert, --cert, --key)' };
    case 'Internal':
      return { exitCode: 1, message: `the server failed (${where}): ${err.message}`, hint: 'look at the member\'s log; a write may or may not have been applied' };
    default:
      return { exitCode: 1, message: `${err.message} (asked ${where})` };
  }
}

/** The message, hint and exit status for whatever a command threw. */
export function describeFailure(err: unknown, endpoints: readonly string[]): Failure {
  if (err instanceof UsageError || err instanceof CommanderInvalidArgument) return { exitCode: 2, message: err.message };
  if (err instanceof CommanderError) return { exitCode: err.exitCode === 0 ? 1 : 2, message: err.message };
  if (err instanceof RequestFailure) return { exitCode: 1, message: err.message, hint: err.hint };
  if (err instanceof CairnClientError) return describeClientError(err, endpoints);
  if (err instanceof CairnError) return { exitCode: err.code === 'InvalidArgument' ? 2 : 1, message: err.message };
  return { exitCode: 1, message: err instanceof Error ? err.message : String(err) };
}

/** Prints a failure on stderr and sets the exit status. */
export function reportFailure(err: unknown, endpoints: readonly string[]): void {
  const failure = describeFailure(err, endpoints);
  process.stderr.write(`cairn: ${failure.message}\n${failure.hint ? `hint: ${failure.hint}\n` : ''}`);
  process.exitCode = failure.exitCode;
}
