import { Logger, LogLevel } from '@nestjs/common';

import { logLevelsFrom } from '../config/log-levels';
import { JobLog, JobLogFields } from './job-log';

const FIELDS: JobLogFields = { jobType: 'email_dispatch', jobId: 42, attempt: 1, maxAttempts: 3 };

/** A JobLog made while the application logs `levels`, and the logger it writes to. */
function jobLogAt(levels: LogLevel[]): { jobLog: JobLog; logger: Logger } {
  Logger.overrideLogger(levels);
  const logger = new Logger('JobWorkerProcessor');
  jest.spyOn(logger, 'debug').mockImplementation(() => undefined);
  jest.spyOn(logger, 'log').mockImplementation(() => undefined);

  return { jobLog: new JobLog(logger), logger };
}

describe('JobLog', () => {
  afterEach(() => {
    Logger.overrideLogger(logLevelsFrom('verbose'));
    jest.restoreAllMocks();
  });

  describe('when LOG_LEVEL is debug', () => {
    it('writes the start and the completion with the job id, type and attempt', () => {
      const { jobLog, logger } = jobLogAt(logLevelsFrom('debug'));

      jobLog.started(FIELDS);
      jobLog.completed(FIELDS, performance.now() - 5);

      expect(logger.debug).toHaveBeenCalledWith({ message: 'job started', ...FIELDS });
      expect(logger.log).toHaveBeenCalledWith({
        message: 'job completed',
        ...FIELDS,
        durationMs: expect.any(Number),
      });
    });
  });

  describe('when LOG_LEVEL is log, the default', () => {
    it('writes completions only, without calling the logger for starts', () => {
      const { jobLog, logger } = jobLogAt(logLevelsFrom('log'));

      jobLog.started(FIELDS);
      jobLog.completed(FIELDS, performance.now());

      expect(logger.debug).not.toHaveBeenCalled();
      expect(logger.log).toHaveBeenCalledTimes(1);
    });
  });

  describe('when LOG_LEVEL is warn or error', () => {
    it.each(['warn', 'error'] as const)('never calls the logger per job (%s)', (level) => {
      const { jobLog, logger } = jobLogAt(logLevelsFrom(level));

      jobLog.started(FIELDS);
      jobLog.completed(FIELDS, performance.now());

      expect(logger.debug).not.toHaveBeenCalled();
      expect(logger.log).not.toHaveBeenCalled();
    });
  });

  it('keeps the levels it was made with, read once', () => {
    const { jobLog, logger } = jobLogAt(logLevelsFrom('error'));
    Logger.overrideLogger(logLevelsFrom('debug'));

    jobLog.started(FIELDS);

    expect(logger.debug).not.toHaveBeenCalled();
  });
});
