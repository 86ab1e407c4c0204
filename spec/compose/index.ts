// The compose loader of `tsswarm stack deploy`: compose files, a stack name
// and an environment in; the Docker objects `docker stack deploy` would
// create out, with docker's validation and texts. Pure: files named by the
// compose file are read through the caller's readFile.
import type { ComposeStack } from './types.js';
import { convertStack } from './convert.js';
import { type ComposeFile, type LoadOptions, loadComposeFiles } from './load.js';

export { convertStack, effectiveCaps, imageWithTag, LABEL_IMAGE, LABEL_NAMESPACE, MAX_OBJECT_FILE_BYTES, splitShell } from './convert.js';
export { ComposeError } from './errors.js';
export { type Environment, substitute } from './interpolate.js';
export { type ComposeFile, composeMinor, type LoadedCompose, type LoadOptions, loadComposeFiles } from './load.js';
export { MAX_ENV_FILE_BYTES } from './normalize.js';
export { LATEST_MINOR } from './schema.js';
export type * from './types.js';
export { MAX_ALIAS_COUNT, MAX_COMPOSE_BYTES, MAX_DEPTH } from './yaml.js';

/** Loads, merges and converts: what `docker stack deploy -c ... NAME` would create. */
export function loadStack(files: readonly ComposeFile[], namespace: string, options: LoadOptions): ComposeStack {
  return convertStack(loadComposeFiles(files, options), namespace, options);
}
