import * as hdr from 'hdr-histogram-js';

// Latencies for `cairn bench`, in an HDR histogram (HdrHistogram's JavaScript
// port): microsecond resolution, three significant digits, fixed memory however
// many requests, so percentiles are exact to 0.1% without keeping every sample.

/** Longest latency kept apart from the others: an hour, in microseconds. Longer ones count as an hour. */
const HIGHEST_MICROSECONDS = 3_600_000_000;

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

export class LatencyHistogram {
  readonly #histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_MICROSECONDS, numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    const microseconds = Math.round(ms * 1000);
    this.#histogram.recordValue(Math.min(HIGHEST_MICROSECONDS, Math.max(0, microseconds)));
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  /** The latency at `percentile` (0-100), to three significant digits; never above the largest recorded. */
  percentileMs(percentile: number): number {
    if (this.count === 0) return 0;
    return Math.min(this.#histogram.getValueAtPercentile(percentile), this.#histogram.maxValue) / 1000;
  }

  summary(): LatencySummary {
    const empty = this.count === 0;
    return {
      count: this.count,
      p50Ms: this.percentileMs(50),
      p90Ms: this.percentileMs(90),
      p99Ms: this.percentileMs(99),
      p999Ms: this.percentileMs(99.9),
      maxMs: empty ? 0 : this.#histogram.maxValue / 1000,
      meanMs: empty ? 0 : this.#histogram.mean / 1000,
    };
  }
}
