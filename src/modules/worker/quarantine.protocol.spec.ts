import { UnrecoverableError } from 'bullmq';

import { restoreError, transferError } from './quarantine.protocol';
import { UnrecoverableJobError } from './unrecoverable-job.error';

/** What crosses the IPC channel: JSON, as Node sends it. */
const overTheChannel = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

describe('handler errors crossing from the quarantine process', () => {
  it('keeps an unrecoverable error unrecoverable, with its name, message and stack', () => {
    const thrown = new UnrecoverableJobError('payload.to: expected an address');

    const restored = restoreError(overTheChannel(transferError(thrown)));

    expect(restored).toBeInstanceOf(UnrecoverableError);
    expect(restored.name).toBe('UnrecoverableJobError');
    expect(restored.message).toBe('payload.to: expected an address');
    expect(restored.stack).toBe(thrown.stack);
  });

  it('keeps an ordinary error retryable', () => {
    const restored = restoreError(overTheChannel(transferError(new TypeError('boom'))));

    expect(restored).not.toBeInstanceOf(UnrecoverableError);
    expect(restored).toMatchObject({ name: 'TypeError', message: 'boom' });
  });

  it('describes a thrown value that is not an Error, as an in-process run does', () => {
    const restored = restoreError(overTheChannel(transferError('gave up')));

    expect(restored.message).toBe('non-Error thrown: gave up');
    expect(restored).not.toBeInstanceOf(UnrecoverableError);
  });
});
