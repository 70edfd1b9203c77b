import { DataSource } from 'typeorm';

import { AppConfig } from '../config/app-config';
import { buildDataSourceOptions } from './data-source-options';
import { ensureDatabaseExists } from './ensure-database';

/**
 * Creates the database if missing and applies pending migrations. Returns the names of the
 * migrations it applied.
 */
export async function prepareDatabase(config: AppConfig): Promise<string[]> {
  await ensureDatabaseExists(config.database);

  const dataSource = new DataSource(buildDataSourceOptions(config.database));
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });

    return applied.map((migration) => migration.name);
  } finally {
    await dataSource.destroy();
  }
}
