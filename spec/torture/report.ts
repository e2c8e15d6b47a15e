// The result of one torture case, and the summary line every run prints.

import { addCounts, zeroCounts, type Counts } from './check.js';

export interface CaseResult {
  name: string;
  passed: boolean;
  counts: Counts;
  /** SIGKILLs this case made. */
  kills: number;
  /** What replays it. */
  seed: string;
  details: string[];
}

export function summary(results: readonly CaseResult[]): { text: string; failed: number; kills: number; counts: Counts } {
  const counts = zeroCounts();
  let kills = 0;
  let failed = 0;
  for (const result of results) {
    addCounts(counts, result.counts);
    kills += result.kills;
    if (!result.passed) failed++;
  }
  const text =
    `${results.length - failed} passed, ${failed} failed (${kills} kill points); ` +
    `lost ${counts.lost}, phantom ${counts.phantom}, wrong ${counts.wrong}, duplicate ${counts.duplicate}, ` +
    `acked again ${counts.ackedAgain}, out of order ${counts.order}, errors ${counts.errors}`;
  return { text, failed, kills, counts };
}

export function describeResult(result: CaseResult): string {
  const head = `${result.passed ? 'ok    ' : 'FAILED'} ${result.name}`;
  if (result.passed) return head;
  return [head, ...result.details.map((d) => `         ${d}`), `         replay: --seed ${result.seed}`].join('\n');
}
