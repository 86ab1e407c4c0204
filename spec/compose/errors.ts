// The one error class of the compose loader: its message is docker's text
// for the same mistake, so a user who moves between `docker stack deploy`
// and `tsswarm stack deploy` reads the same line.
import { TsswarmError } from '../../lib/errors.js';

export class ComposeError extends TsswarmError {
  /** The key path at fault, for an error the schema found (where a line can be told). */
  readonly path: readonly string[] | undefined;
  /** Where in which file (`compose.yml, line 4`), once the loader knows: docker's text stays the message. */
  where: string | undefined;

  constructor(message: string, options: { path?: readonly string[] } = {}) {
    super('INVALID_ARGUMENT', message);
    this.name = 'ComposeError';
    this.path = options.path;
  }
}
