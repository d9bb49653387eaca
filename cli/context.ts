import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client } from '../src/client/index.js';
import { reportFailure, UsageError } from './failure.js';
import type { OutputFormat } from './output.js';

// What every client command shares: the global options, the endpoints, a client
// built from them, values read from stdin, and failures reported one way.

export interface GlobalOptions {
  /** Comma-separated client URLs (`--endpoints`, env CAIRN_ENDPOINTS). */
  readonly endpoints: string;
  /** Deadline of each request in milliseconds. */
  readonly timeout: number;
  readonly output: OutputFormat;
  /** TLS files, when the command has such flags: CA bundle, client certificate and key (PEM). */
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
}

export type Globals = () => GlobalOptions;

/** `--endpoints` as URLs; `host:port` means `http://host:port`, as etcdctl takes it. Throws UsageError when malformed. */
export function endpointList(g: GlobalOptions): string[] {
  const urls = g.endpoints
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`));
  if (urls.length === 0) throw new UsageError('--endpoints is empty: give the cluster\'s client URLs, e.g. --endpoints http://127.0.0.1:2379');
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--endpoints: ${JSON.stringify(url)} is not a URL (expected e.g. http://127.0.0.1:2379)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--endpoints: ${url} must be http:// or https://`);
  }
  return urls.map((u) => u.replace(/\/+$/, ''));
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`--${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** TLS settings from --cacert / --cert / --key, when given. */
export function tlsOptions(g: GlobalOptions): ConnectionOptions | undefined {
  if (!g.cacert && !g.cert && !g.key) return undefined;
  if (Boolean(g.cert) !== Boolean(g.key)) throw new UsageError('--cert and --key go together');
  return {
    ...(g.cacert ? { ca: readPem('cacert', g.cacert) } : {}),
    ...(g.cert ? { cert: readPem('cert', g.cert) } : {}),
    ...(g.key ? { key: readPem('key', g.key) } : {}),
  };
}

export function newClient(g: GlobalOptions, endpoints = endpointList(g)): Client {
  const tls = tlsOptions(g);
  return new Client({ endpoints, timeoutMs: g.timeout, ...(tls ? { tls } : {}) });
}

/** Runs a command's action; whatever it throws is reported (message, hint, exit status 1 or 2). */
export async function runAction(globals: Globals, action: (g: GlobalOptions) => Promise<void>): Promise<void> {
  const g = globals();
  try {
    await action(g);
  } catch (err) {
    let endpoints: string[] = [g.endpoints];
    try {
      endpoints = endpointList(g);
    } catch {
      // reported as given
    }
    reportFailure(err, endpoints);
  }
}

/** Runs an action with a client on the global endpoints, closed afterwards. */
export function withClient(globals: Globals, action: (client: Client, g: GlobalOptions, endpoints: string[]) => Promise<void>): Promise<void> {
  return runAction(globals, async (g) => {
    const endpoints = endpointList(g);
    const client = newClient(g, endpoints);
    try {
      await action(client, g, endpoints);
    } finally {
      await client.close();
    }
  });
}

/** Everything on stdin, as bytes (binary-safe). Refuses an interactive terminal: `what` says what was expected there. */
export async function readStdin(what: string): Promise<Buffer> {
  if (process.stdin.isTTY) throw new UsageError(`${what} is missing: give it as an argument or on stdin (e.g. echo -n ... | cairn ...)`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An AbortSignal that fires on Ctrl-C (SIGINT) or SIGTERM; `dispose` removes the handlers. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
