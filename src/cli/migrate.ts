import 'reflect-metadata';

import { loadAppConfig } from '../modules/config/app-config';
import { prepareDatabase } from '../modules/database/prepare-database';

/** `npm run migrate`: creates the database if needed and applies pending migrations. */
async function main(): Promise<void> {
  const applied = await prepareDatabase(loadAppConfig());
  console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'no pending migrations');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
