// The UsageError a call throws, for tests that check the field and message it names.
import { UsageError } from '../../lib/errors.js';

export function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error('expected a UsageError');
}
