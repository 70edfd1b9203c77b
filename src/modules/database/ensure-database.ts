import { createConnection } from 'mysql2/promise';

import { DatabaseConfig } from '../config/app-config';

/** Creates the configured database if it is missing, so that the defaults work on a new machine. */
export async function ensureDatabaseExists(database: DatabaseConfig): Promise<void> {
  const connection = await createConnection({
    host: database.host,
    port: database.port,
    user: database.user,
    password: database.password,
  });

  try {
    // Identifiers cannot be bound as parameters; the name was checked against [A-Za-z0-9_].
    await connection.query(
      `CREATE DATABASE IF NOT EXISTS \`${database.database}\`
       CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
  } finally {
    await connection.end();
  }
}
