import 'reflect-metadata';

import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { NestExpressApplication } from '@nestjs/platform-express';

import { AppModule } from './app.module';
import { jsonBodyLimitBytes } from './modules/jobs-api/jobs-api.constants';
import { loadAppConfig } from './modules/config/app-config';
import { prepareDatabase } from './modules/database/prepare-database';
import { logLevelsFrom } from './modules/config/log-levels';

async function bootstrap(): Promise<void> {
  const config = loadAppConfig();
  const needsDatabase = config.roles.includes('api') || config.roles.includes('ledger');
  if (needsDatabase && config.runMigrations) {
    await prepareDatabase(config);
  }

  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoles({ config }), {
    logger: logLevelsFrom(config.logLevel),
  });
  // Nest's default JSON limit (100 kB) is below the payload limit; set it before listening.
  app.useBodyParser('json', { limit: jsonBodyLimitBytes(config.payloadLimitBytes) });
  app.enableShutdownHooks();

  if (config.roles.includes('api')) {
    await app.listen(config.port, '0.0.0.0');
  } else {
    await app.init();
  }

  new Logger('Bootstrap').log({ message: 'started', roles: config.roles, port: config.port });
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
