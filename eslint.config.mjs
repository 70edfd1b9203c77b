import js from '@eslint/js';
import prettier from 'eslint-config-prettier/flat';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const typescriptFiles = ['src/**/*.ts', 'test/**/*.ts', 'ormconfig.ts'];
const testFiles = ['**/*.spec.ts', 'test/**/*.ts'];

export default defineConfig(
  globalIgnores(['dist', 'node_modules', 'coverage', 'jest.config.js', 'eslint.config.mjs']),

  {
    files: typescriptFiles,
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },

  // Prettier's config switches off `curly` and `max-len`, so it goes before our own rules.
  prettier,

  {
    files: typescriptFiles,
    rules: {
      curly: ['error', 'all'],
      'max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true },
      ],
      'padding-line-between-statements': [
        'error',
        {
          blankLine: 'always',
          prev: ['const', 'let', 'expression', 'if', 'for', 'block-like'],
          next: 'return',
        },
      ],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Nest resolves constructor parameters from their runtime classes: keep value imports.
      '@typescript-eslint/consistent-type-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },

  {
    files: testFiles,
    languageOptions: {
      globals: globals.jest,
    },
    rules: {
      // Mocks, `expect.any()` and supertest's `body` are typed `any`.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Query results are typed by assertion in tests; the generic form adds nothing there.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // `expect(service.method).toHaveBeenCalled()` passes methods around unbound on purpose.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
