import { REDACTED, redactPayloadValues } from './error-redaction';

describe('redactPayloadValues', () => {
  it('hides payload strings that an error message echoes, at any depth', () => {
    const payload = { to: 'alice@example.com', card: { number: '4111111111111111' } };

    const message = redactPayloadValues(
      'cannot send to alice@example.com with card 4111111111111111',
      payload,
    );

    expect(message).toBe(`cannot send to ${REDACTED} with card ${REDACTED}`);
  });

  it('hides long numbers and values inside arrays', () => {
    expect(redactPayloadValues('account 12345678 rejected', { ids: [12345678] })).toBe(
      `account ${REDACTED} rejected`,
    );
  });

  it('replaces the longer of two overlapping values first, leaving no fragment behind', () => {
    const message = redactPayloadValues('bad value secret-token-xyz', {
      a: 'secret',
      b: 'secret-token-xyz',
    });

    expect(message).toBe(`bad value ${REDACTED}`);
  });

  it('leaves short values and messages without payload contents as they are', () => {
    expect(redactPayloadValues('timeout after 30 s', { mode: 'a', retries: 30 })).toBe(
      'timeout after 30 s',
    );
    expect(redactPayloadValues('boom', null)).toBe('boom');
  });
});
