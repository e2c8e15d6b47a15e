// ESLint: typescript-eslint's recommended type-checked rules, and the
// layer rules of docs/architecture.md (a layer imports only from below it).
import tseslint from 'typescript-eslint';

/** Files no layer below the face may import, as seen from a folder of lib/. */
const FACE = ['../queue.js', '../options.js', '../index.js'];

/** A layer rule: `files` may import nothing that `patterns` name (eslint's no-restricted-imports). */
function layer(files, patterns, ignores = []) {
  return { files, ignores, rules: { 'no-restricted-imports': ['error', { patterns }] } };
}

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
  layer(
    ['lib/store/**/*.ts'],
    [
      { group: FACE, message: 'the store imports nothing from the face' },
      {
        group: ['../coordination/session.js', '../wakeup/*', '../task/*'],
        message: 'the store imports nothing from the lock session, the wake-ups or tasks',
      },
    ],
  ),
  layer(
    ['lib/coordination/**/*.ts', 'lib/wakeup/**/*.ts'],
    [
      { group: FACE, message: 'coordination and wake-ups import nothing from the face' },
      {
        group: ['../store/*', '!../store/events.js', '../task/*'],
        message: 'coordination and wake-ups import nothing of the store but store/events.js, nothing of tasks',
      },
    ],
  ),
  // The face's own helpers (open, operation, arguments, ...) serve queue.ts; only index.ts exposes it.
  layer(
    ['lib/*.ts'],
    [{ group: ['./queue.js', './index.js'], message: 'nothing in lib/ imports queue.ts or index.ts but index.ts (and task/)' }],
    ['lib/index.ts'],
  ),
  layer(['lib/fs/**/*.ts'], [{ group: ['../*'], message: 'fs/ imports nothing of perq' }]),
);
