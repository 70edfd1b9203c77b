import { LogLevel } from '@nestjs/common';

import { AppConfig } from './app-config';

const ORDER: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** The Nest log levels at and above the configured one. */
export function logLevelsFrom(level: AppConfig['logLevel']): LogLevel[] {
  return ORDER.slice(0, ORDER.indexOf(level) + 1);
}
