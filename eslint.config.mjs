// @ts-check
// ESLint flat config. TypeScript gets typescript-eslint's type-checked rule sets, with types from
// tsconfig.json (the one config that covers libs/, apps/, test/ and bench/); the .js/.mjs scripts get
// ESLint's own recommended rules. eslint-config-prettier comes last: Prettier owns the layout.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores([
    '**/generated/**',
    '**/dist/**',
    '**/node_modules/**',
    'coverage/**',
    '.venv/**',
    '.setup/**',
    'bench/results/**',
    // A template app with its own dependencies, installed and built only by scripts/consumer-test.mjs.
    'test/consumer/**',
  ]),
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2023, globals: globals.node },
  },
  {
    // No "type" in package.json: a .js file here is CommonJS (jest.config.js).
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  prettier,
);
