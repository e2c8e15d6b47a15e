// Warnings and errors as specs report them: process warnings silenced or
// captured while a piece of work runs (perq warns on every damaged record it
// passes, and a torture check damages hundreds), and any thrown value made
// into one line of text for a report.

import { QueueError } from '../../lib/index.js';

type EmitWarning = typeof process.emitWarning;

function swapEmitWarning(replacement: EmitWarning): () => void {
  // Kept as it is (not bound): put back below exactly as found.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = process.emitWarning;
  process.emitWarning = replacement;
  return () => {
    process.emitWarning = original;
  };
}

/** Runs `fn` with process warnings dropped. */
export async function withoutWarnings<R>(fn: () => Promise<R>): Promise<R> {
  const restore = swapEmitWarning(() => {});
  try {
    return await fn();
  } finally {
    restore();
  }
}

/** `withoutWarnings`, for a synchronous `fn`. */
export function withoutWarningsSync<R>(fn: () => R): R {
  const restore = swapEmitWarning(() => {});
  try {
    return fn();
  } finally {
    restore();
  }
}

/** Runs `fn` with process warnings captured (not printed); returns their codes (or their text's start). */
export async function withWarningsCaptured<R>(fn: () => Promise<R>): Promise<{ value: R; codes: string[] }> {
  const codes: string[] = [];
  const restore = swapEmitWarning((warning: string | Error, options?: unknown) => {
    const code =
      typeof options === 'object' && options !== null ? (options as { code?: string }).code : (warning as { code?: string })?.code;
    codes.push(code ?? String(warning).slice(0, 40));
  });
  try {
    const value = await fn();
    // Warnings perq emits on the next turn (after a release) count too.
    await new Promise((resolve) => setImmediate(resolve));
    return { value, codes };
  } finally {
    restore();
  }
}

/** A thrown value as one line: a QueueError's code and message, another error's name and message. */
export function errorText(error: unknown): string {
  if (error instanceof QueueError) return `${error.code} ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}

/** A failed command's error (execFile, spawnSync) as one line, with what the command printed: it says more than "Command failed". */
export function commandErrorText(error: unknown): string {
  if (!(error instanceof Error)) return errorText(error);
  const { stdout, stderr } = error as { stdout?: unknown; stderr?: unknown };
  const output = [stdout, stderr].filter((s): s is string => typeof s === 'string' && s.trim() !== '').map((s) => s.trim());
  return output.length > 0 ? `${error.message.split('\n')[0]}: ${output.join(' ')}` : error.message;
}
