import {
  fromBullJobId,
  MAX_PRIORITY,
  startsBeforeOf,
  toBullJobId,
  toBullJobName,
  toBullPriority,
} from './queue.constants';

describe('BullMQ job ids', () => {
  it('derives a non-numeric id from the ledger row id and reads it back', () => {
    expect(toBullJobId(42)).toBe('job-42');
    expect(fromBullJobId('job-42')).toBe(42);
  });

  it('ignores ids that the ledger did not mint', () => {
    expect(fromBullJobId('42')).toBeUndefined();
    expect(fromBullJobId('job-abc')).toBeUndefined();
    expect(fromBullJobId('job-0')).toBeUndefined();
  });
});

describe('BullMQ job names', () => {
  it('is the job type for a first send, and carries the starts before a send again', () => {
    expect(toBullJobName('email_dispatch', 0)).toBe('email_dispatch');
    expect(toBullJobName('email_dispatch', 2)).toBe('email_dispatch#2');
    expect(startsBeforeOf('email_dispatch#2')).toBe(2);
    expect(startsBeforeOf('email_dispatch')).toBe(0);
  });

  it('reads anything it did not make as no starts before', () => {
    expect(startsBeforeOf('email_dispatch#')).toBe(0);
    expect(startsBeforeOf('email_dispatch#-3')).toBe(0);
    expect(startsBeforeOf('email_dispatch#1.5')).toBe(0);
    expect(startsBeforeOf('email_dispatch#x')).toBe(0);
  });
});

describe('toBullPriority', () => {
  it('runs a larger ledger priority first and never maps to 0', () => {
    expect(toBullPriority(0)).toBe(MAX_PRIORITY + 1);
    expect(toBullPriority(MAX_PRIORITY)).toBe(1);
    expect(toBullPriority(10)).toBeLessThan(toBullPriority(9));
  });
});
