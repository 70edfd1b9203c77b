import { JobContext } from '../worker/job-context.interface';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';
import { EmailDispatchHandler } from './email-dispatch.handler';
import { SimulatedTransientError } from './simulated-work';

function contextFor(attempt: number, maxAttempts = 3): JobContext {
  return {
    id: 7,
    jobType: 'email_dispatch',
    attempt,
    maxAttempts,
    signal: new AbortController().signal,
  };
}

describe('EmailDispatchHandler', () => {
  const handler = new EmailDispatchHandler();
  const payload = { to: 'user@example.com', subject: 'Welcome' };

  it('returns a message id once the email is sent', async () => {
    await expect(handler.send(payload, contextFor(1))).resolves.toEqual({
      messageId: 'msg-7-1',
      durationMs: expect.any(Number),
    });
  });

  describe('when the payload can never succeed', () => {
    it('fails without retries when `to` is missing, naming the field', async () => {
      const sending = handler.send({ subject: 'Welcome' }, contextFor(1));

      await expect(sending).rejects.toBeInstanceOf(UnrecoverableJobError);
      await expect(sending).rejects.toThrow(/^payload\.to: expected an email address/);
    });

    it('fails without retries when `to` is not an address', async () => {
      await expect(handler.send({ ...payload, to: 'nobody' }, contextFor(1))).rejects.toThrow(
        UnrecoverableJobError,
      );
    });

    it('fails without retries when `subject` is blank', async () => {
      await expect(handler.send({ ...payload, subject: ' ' }, contextFor(1))).rejects.toThrow(
        'payload.subject: expected a non-empty string, got a blank string',
      );
    });

    it('describes a bad value by its kind, never by its content', async () => {
      const error = await handler
        .send({ ...payload, to: 'secret-address-without-at' }, contextFor(1))
        .catch((thrown: unknown) => thrown);

      expect((error as Error).message).toMatch(/got a string of another form$/);
      expect((error as Error).message).not.toContain('secret');
    });
  });

  describe('when the payload asks for one simulated failure', () => {
    const failingOnce = { ...payload, simulateFailures: 1 };

    it('fails the first attempt with a retryable error', async () => {
      const sending = handler.send(failingOnce, contextFor(1));

      await expect(sending).rejects.toBeInstanceOf(SimulatedTransientError);
      await expect(sending).rejects.not.toBeInstanceOf(UnrecoverableJobError);
      await expect(sending).rejects.toThrow('simulated transient failure (attempt 1 of 3)');
    });

    it('succeeds on the second attempt', async () => {
      await expect(handler.send(failingOnce, contextFor(2))).resolves.toMatchObject({
        messageId: 'msg-7-2',
      });
    });
  });
});
