/** Types of `bench-measures.js`, which the producer process loads without a build step. */
export function runConcurrently(
  count: number,
  inFlight: number,
  task: (index: number) => Promise<unknown>,
): Promise<void>;
export function percentile(values: number[], share: number): number | undefined;
export function rate(jobs: number, ms: number): number;
