import 'reflect-metadata';
import { DataSource } from 'typeorm';

import { loadAppConfig } from './src/modules/config/app-config';
import { buildDataSourceOptions } from './src/modules/database/data-source-options';

/** The data source for the TypeORM CLI (`npx typeorm -d dist/ormconfig.js migration:show`). */
export default new DataSource(buildDataSourceOptions(loadAppConfig().database));
