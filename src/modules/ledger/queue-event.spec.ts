import { parseCompactEvents } from './queue-event';

describe('parseCompactEvents', () => {
  it('gives each event its detail under the field it stands for', () => {
    const events = parseCompactEvents('q', [
      '1-0',
      'waiting',
      'job-1',
      'active',
      '2-0',
      'delayed',
      'job-1',
      '1764756000123',
      '3-0',
      'failed',
      'job-1',
      'boom',
      '4-0',
      'completed',
      'job-1',
      '',
      '5-0',
      'stalled',
      '',
      '',
    ]);

    expect(events).toEqual([
      {
        id: '1-0',
        queue: 'q',
        event: 'waiting',
        jobId: 'job-1',
        fields: { event: 'waiting', jobId: 'job-1', prev: 'active' },
      },
      {
        id: '2-0',
        queue: 'q',
        event: 'delayed',
        jobId: 'job-1',
        fields: { event: 'delayed', jobId: 'job-1', delay: '1764756000123' },
      },
      {
        id: '3-0',
        queue: 'q',
        event: 'failed',
        jobId: 'job-1',
        fields: { event: 'failed', jobId: 'job-1', failedReason: 'boom' },
      },
      {
        id: '4-0',
        queue: 'q',
        event: 'completed',
        jobId: 'job-1',
        fields: { event: 'completed', jobId: 'job-1' },
      },
      {
        id: '5-0',
        queue: 'q',
        event: 'stalled',
        jobId: undefined,
        fields: { event: 'stalled', jobId: '' },
      },
    ]);
  });
});
