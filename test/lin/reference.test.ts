// The checker against histories with known answers (reference/, from the
// Porcupine checker's test data; see reference/NOTICE).
//
// Bound: every file is checked within BUDGET_MS of search time, enforced by the
// checker's own budget (per key and for the whole file); a file it cannot
// settle within that comes back 'unknown', which fails the test.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkHistory } from './checker.js';
import { parseHistory } from './parse.js';

const BUDGET_MS = 10_000;
const referenceDirectory = new URL('./reference/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('expected.json', referenceDirectory), 'utf8')) as Record<string, boolean>;

describe('reference histories', () => {
  it('expected.json covers every history file', () => {
    const files = ['jepsen', 'kv'].flatMap((folder) => readdirSync(new URL(`${folder}/`, referenceDirectory)).map((name) => `${folder}/${name}`));
    expect(files.length).toBeGreaterThan(100);
    expect(Object.keys(expected).sort()).toEqual(files.sort());
  });

  for (const [file, linearizable] of Object.entries(expected)) {
    it(`${file} is ${linearizable ? '' : 'not '}linearizable`, () => {
      const history = parseHistory(readFileSync(new URL(file, referenceDirectory), 'utf8'));
      expect(history.operations.length).toBeGreaterThan(0);
      const result = checkHistory(history, { budgetMs: BUDGET_MS, totalBudgetMs: BUDGET_MS });
      expect(result.verdict, result.explanation).toBe(linearizable ? 'linearizable' : 'not-linearizable');
      if (!linearizable) {
        expect(result.failingKey).toBeDefined();
        expect(result.explanation).toContain(`key ${JSON.stringify(result.failingKey)} is not linearizable`);
      }
    });
  }
});

describe('search budget', () => {
  const hardHistory = parseHistory(readFileSync(new URL('jepsen/etcd_002.log', referenceDirectory), 'utf8'));

  it('answers unknown, not a verdict, when the time budget is spent', () => {
    const result = checkHistory(hardHistory, { budgetMs: 0 });
    expect(result.verdict).toBe('unknown');
    expect(result.unknownKeys).toEqual(['register']);
    expect(result.explanation).toContain('out of time');
  });

  it('answers unknown when the remembered configurations exceed their bound', () => {
    const result = checkHistory(hardHistory, { statesMax: 10 });
    expect(result.verdict).toBe('unknown');
    expect(result.explanation).toContain('more than 10 configurations');
  });
});
