import 'reflect-metadata';

import { INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { NestExpressApplication } from '@nestjs/platform-express';

import { AppModule } from './app.module';
import { jsonBodyLimitBytes } from './modules/jobs-api/jobs-api.constants';
import { AppConfig, loadAppConfig } from './modules/config/app-config';
import { prepareDatabase } from './modules/database/prepare-database';
import { logLevelsFrom } from './modules/config/log-levels';

async function bootstrap(): Promise<void> {
  const config = loadAppConfig();
  if (config.workerQuarantineChild) {
    return startQuarantineChild(config);
  }

  const needsDatabase = config.roles.includes('api') || config.roles.includes('ledger');
  if (needsDatabase && config.runMigrations) {
    await prepareDatabase(config);
  }

  // The worker forks this same script to run suspect jobs in quarantine.
  const entry = { script: __filename, execArgv: process.execArgv };
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoles({ config, entry }),
    { logger: logLevelsFrom(config.logLevel) },
  );
  // Nest's default JSON limit (100 kB) is below the payload limit; set it before listening.
  app.useBodyParser('json', { limit: jsonBodyLimitBytes(config.payloadLimitBytes) });
  exitCleanlyOnSignals(app);

  if (config.roles.includes('api')) {
    await app.listen(config.port, '0.0.0.0');
  } else {
    await app.init();
  }

  new Logger('Bootstrap').log({ message: 'started', roles: config.roles, port: config.port });
}

/**
 * A worker's quarantine child runs handlers only: an application context without HTTP, which
 * also spares it loading Express. A poison job costs one such boot per attempt.
 */
async function startQuarantineChild(config: AppConfig): Promise<void> {
  leaveShutdownToParentWorker();
  await NestFactory.createApplicationContext(AppModule.forRoles({ config }), {
    logger: logLevelsFrom(config.logLevel),
  });
}

/**
 * A terminal's Ctrl-C reaches the whole process group, the quarantine child included. The
 * parent worker lets its running jobs finish first, so the child must outlive the signal; the
 * parent kills it afterwards, and the child exits by itself when the parent is gone.
 */
function leaveShutdownToParentWorker(): void {
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
}

/**
 * Nest's own shutdown hooks re-raise the signal after closing, so the process ends "killed by
 * SIGTERM". Closing here instead lets running jobs finish (up to SHUTDOWN_TIMEOUT_MS) and then
 * exits 0; a second signal exits at once.
 */
function exitCleanlyOnSignals(app: INestApplication): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      process.exit(1);
    }

    closing = true;
    new Logger('Bootstrap').log({ message: 'shutting down', signal });
    app
      .close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        console.error(error instanceof Error ? error.message : error);
        process.exit(1);
      });
  };

  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
