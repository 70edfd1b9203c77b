import { backlogStep } from './ledger-backlog.watch';

describe('backlogStep', () => {
  const limit = 1000;

  it('holds a running worker once the unread entries reach the limit', () => {
    expect(backlogStep(false, 999, limit)).toBe('keep');
    expect(backlogStep(false, 1000, limit)).toBe('pause');
    expect(backlogStep(false, 5000, limit)).toBe('pause');
  });

  it('lets a held worker go only once the backlog is down to half the limit', () => {
    expect(backlogStep(true, 999, limit)).toBe('keep');
    expect(backlogStep(true, 501, limit)).toBe('keep');
    expect(backlogStep(true, 500, limit)).toBe('resume');
    expect(backlogStep(true, 0, limit)).toBe('resume');
  });

  it('never holds work back on an unknown backlog, and releases a worker it held', () => {
    expect(backlogStep(false, undefined, limit)).toBe('keep');
    expect(backlogStep(true, undefined, limit)).toBe('resume');
  });
});
