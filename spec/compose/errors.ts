// The one error class of the compose loader: its message is docker's text
// for the same mistake, so a user who moves between `docker stack deploy`
// and `tsswarm stack deploy` reads the same line.
import { TsswarmError } from '../../lib/errors.js';

export class ComposeError extends TsswarmError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'ComposeError';
  }
}
