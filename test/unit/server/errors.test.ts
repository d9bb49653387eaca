import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CairnError, CompactedError, CompareFailedError, ERROR_CLASSES, ERROR_CODES, type ErrorCode } from '../../../src/errors.js';

/** The repository root: the nearest directory above this file with a package.json (works from test/ and from dist/test/). */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('no package.json above the test file');
    dir = parent;
  }
  return dir;
}

/** The `code` status pairs of API.md's "Errors:" convention (the bullet up to the next bullet or heading). */
function documentedCodes(api: string): Record<string, number> {
  const start = api.indexOf('- Errors:');
  if (start < 0) throw new Error('API.md has no "- Errors:" bullet');
  const rest = api.slice(start + 1);
  const end = rest.search(/\n(- |#)/);
  const bullet = end < 0 ? rest : rest.slice(0, end);
  return Object.fromEntries([...bullet.matchAll(/`(\w+)`\s+(\d{3})/g)].map((m) => [m[1], Number(m[2])]));
}

describe('error table', () => {
  // The contract lives beside the repository (../shared/API.md); a bare checkout has only the table.
  const apiPath = join(repositoryRoot(), '..', 'shared', 'API.md');

  it.runIf(existsSync(apiPath))("lists exactly API.md's codes with their statuses", () => {
    const documented = documentedCodes(readFileSync(apiPath, 'utf8'));
    expect(Object.keys(documented).length).toBeGreaterThanOrEqual(10);
    for (const [code, status] of Object.entries(documented)) expect(ERROR_CODES[code as ErrorCode], code).toBe(status);
    for (const [code, status] of Object.entries(ERROR_CODES)) expect(documented[code], code).toBe(status);
  });

  it('has one class per code, each with its code, status and name', () => {
    expect(Object.keys(ERROR_CLASSES).sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, Class] of Object.entries(ERROR_CLASSES)) {
      const error: CairnError =
        code === 'Compacted' ? new CompactedError(7) : new (Class as new (message: string) => CairnError)('message');
      expect(error).toBeInstanceOf(CairnError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.status).toBe(ERROR_CODES[code as ErrorCode]);
      expect(error.name).toBe(`${code}Error`);
    }
  });

  it('carries details: compactRevision for Compacted, kv for CompareFailed', () => {
    expect(new CompactedError(42).details).toEqual({ compactRevision: 42 });
    const kv = { key: new Uint8Array([1]), value: new Uint8Array([2]), createRevision: 1, modRevision: 2, version: 2, lease: 0 };
    expect(new CompareFailedError('version is 2, not 0', kv).details).toEqual({ kv });
    expect(new CompareFailedError('the key does not exist').details).toEqual({});
  });
});
