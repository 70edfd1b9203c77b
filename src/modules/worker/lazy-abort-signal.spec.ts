import { LazyAbortSignal } from './lazy-abort-signal';

describe('LazyAbortSignal', () => {
  it('hands out one signal, aborted when the job is abandoned', () => {
    const lazy = new LazyAbortSignal();
    const signal = lazy.signal;
    const seen: string[] = [];
    signal.addEventListener('abort', () => seen.push('aborted'));

    expect(signal.aborted).toBe(false);
    lazy.abort();

    expect(lazy.signal).toBe(signal);
    expect(signal.aborted).toBe(true);
    expect(seen).toEqual(['aborted']);
  });

  it('gives an already aborted signal to a handler that asks only after the abort', () => {
    const lazy = new LazyAbortSignal();

    lazy.abort();

    expect(lazy.signal.aborted).toBe(true);
  });
});
