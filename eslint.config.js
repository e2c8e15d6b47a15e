// ESLint: typescript-eslint's recommended type-checked rules, and the
// layer rules of docs/architecture.md (a layer imports only from below it).
import tseslint from 'typescript-eslint';

/** Files no layer below the face may import. */
const FACE = ['**/queue.js', '**/options.js', '**/index.js'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // An async method without await is how a call turns a synchronous throw into a rejection.
      '@typescript-eslint/require-await': 'off',
      // An AbortSignal's reason, or an error passed on from below, is rejected as it came.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // node:test's describe and test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'test', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['lib/store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: FACE.map((p) => `../${p.slice(3)}`), message: 'the store imports nothing from the face' },
            {
              group: ['../coordination/session.js', '../wakeup/*', '../task/*'],
              message: 'the store imports nothing from the lock session, the wake-ups or tasks',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/coordination/**/*.ts', 'lib/wakeup/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: FACE.map((p) => `../${p.slice(3)}`), message: 'coordination and wake-ups import nothing from the face' },
            {
              group: ['../store/*', '!../store/events.js', '../task/*'],
              message: 'coordination and wake-ups import nothing of the store but store/events.js, nothing of tasks',
            },
          ],
        },
      ],
    },
  },
  {
    // The face's own helpers (open, operation, arguments, ...) serve queue.ts; only index.ts exposes it.
    files: ['lib/*.ts'],
    ignores: ['lib/index.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['./queue.js', './index.js'], message: 'nothing in lib/ imports queue.ts or index.ts but index.ts (and task/)' },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/fs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*'], message: 'fs/ imports nothing of perq' }] }],
    },
  },
);
