import { fromBullJobId, MAX_PRIORITY, toBullJobId, toBullPriority } from './queue.constants';

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

describe('toBullPriority', () => {
  it('runs a larger ledger priority first and never maps to 0', () => {
    expect(toBullPriority(0)).toBe(MAX_PRIORITY + 1);
    expect(toBullPriority(MAX_PRIORITY)).toBe(1);
    expect(toBullPriority(10)).toBeLessThan(toBullPriority(9));
  });
});
