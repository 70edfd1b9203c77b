import { DataSourceOptions } from 'typeorm';

import { LEDGER_ENTITIES } from '../../entities';
import { LEDGER_MIGRATIONS } from '../../migrations';
import { DatabaseConfig } from '../config/app-config';

/** One definition of the connection, shared by the app, the CLI commands and `ormconfig.ts`. */
export function buildDataSourceOptions(database: DatabaseConfig): DataSourceOptions {
  return {
    // 'mariadb' rather than 'mysql': it also speaks to MySQL, and returns right generated ids.
    type: 'mariadb',
    host: database.host,
    port: database.port,
    username: database.user,
    password: database.password,
    database: database.database,
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: true,
    entities: LEDGER_ENTITIES,
    migrations: LEDGER_MIGRATIONS,
    migrationsTableName: 'ledger_migrations',
    synchronize: false,
    migrationsRun: false,
    logging: ['error'],
    // Fail fast while the database is away: enqueue answers 503, the projector retries.
    connectTimeout: 3000,
    extra: { connectionLimit: 10 },
  };
}
