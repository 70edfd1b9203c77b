import 'reflect-metadata';

import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { AppModule } from './app.module';
import { loadAppConfig } from './modules/config/app-config';
import { prepareDatabase } from './modules/database/prepare-database';
import { logLevelsFrom } from './modules/config/log-levels';

async function bootstrap(): Promise<void> {
  const config = loadAppConfig();
  const needsDatabase = config.roles.includes('api') || config.roles.includes('ledger');
  if (needsDatabase && config.runMigrations) {
    await prepareDatabase(config);
  }

  const app = await NestFactory.create(AppModule.forRoles({ config }), {
    logger: logLevelsFrom(config.logLevel),
  });
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
