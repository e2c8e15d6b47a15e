// ESLint: typescript-eslint's type-checked rules that catch real bugs, and the
// layer rules of docs/architecture.md (a layer imports only from below it).
import tseslint from 'typescript-eslint';

/** Files no layer below the face may import. */
const FACE = ['**/queue.js', '**/options.js', '**/index.js'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe and test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['lib/store/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: FACE.map((p) => `../${p.slice(3)}`), message: 'the store imports nothing from the face' },
        { group: ['../coordination/session.js', '../wakeup/*', '../task/*'], message: 'the store imports nothing from the lock session, the wake-ups or tasks' },
      ] }],
    },
  },
  {
    files: ['lib/coordination/**/*.ts', 'lib/wakeup/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: FACE.map((p) => `../${p.slice(3)}`), message: 'coordination and wake-ups import nothing from the face' },
        { group: ['../store/*', '!../store/events.js', '../task/*'], message: 'coordination and wake-ups import nothing of the store but store/events.js, nothing of tasks' },
      ] }],
    },
  },
  {
    files: ['lib/fs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*'], message: 'fs/ imports nothing of perq' }] }],
    },
  },
);
