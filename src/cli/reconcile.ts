import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';

import { AppModule } from '../app.module';
import { loadAppConfig } from '../modules/config/app-config';
import { logLevelsFrom } from '../modules/config/log-levels';
import { LedgerProjector } from '../modules/ledger/ledger-projector.service';

const REPLY_TIMEOUT_MS = 120_000;

/**
 * `npm run reconcile`: has the active ledger projector compare every unfinished row with Redis
 * now, and prints its report. With no ledger process running, this process becomes the
 * projector and does it itself.
 */
async function main(): Promise<void> {
  const config = { ...loadAppConfig(), roles: ['ledger' as const] };
  const app = await NestFactory.createApplicationContext(AppModule.forRoles({ config }), {
    logger: logLevelsFrom(config.logLevel === 'log' ? 'warn' : config.logLevel),
  });

  try {
    const report = await app.get(LedgerProjector).requestReconcile(REPLY_TIMEOUT_MS);
    console.log(
      `reconciled: ${report.checked} unfinished rows checked, ${report.resent} sent again, ` +
        `${report.repaired} repaired, ${report.inFlight} left to the projector (${report.durationMs} ms)`,
    );
    console.log(JSON.stringify({ reconcile: report }));
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
