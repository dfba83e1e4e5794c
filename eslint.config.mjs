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
    rules: {
      // The house style: `T[]` for a simple element type, `Array<{ ... }>` / `Array<A | B>` where `(A | B)[]` reads worse.
      '@typescript-eslint/array-type': ['error', { default: 'array-simple' }],
      // `||` stays right for strings and booleans: an empty environment variable or proto3's default '' means unset
      // (`env.HOST || '127.0.0.1'`), and `a || b` of two booleans is a logical or, not a default.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true, boolean: true } }],
      // Errors forwarded as they were caught (an iterator's throw(error), a call's failure) stay what they were.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // The prototype-pollution tests read `state['__proto__']` as the plain key it is; `state.__proto__` reads as the accessor.
      '@typescript-eslint/dot-notation': ['error', { allowPattern: '^__proto__$' }],
      // The same convention tsc's noUnusedLocals/noUnusedParameters apply: `_name` and rest siblings are deliberate.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['**/*.{ts,js,mjs,cjs}'],
    rules: {
      // `let x; const f = () => x?.y; x = ...`: a callback that may run before the assignment must not hit the TDZ.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  prettier,
);
