// What a call throws, for tests that check the field and message an error names.
import { UsageError } from '../lib/errors.js';

/** The UsageError `fn` throws (anything else thrown, or nothing, fails the test). */
export function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error('expected a UsageError');
}

/** The message of whatever `fn` throws (nothing thrown fails the test). */
export function thrownMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}
