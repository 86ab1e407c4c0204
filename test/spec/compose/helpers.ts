// Shared by the compose loader's tests: a stack loaded from YAML texts, with
// the files it may read held in memory.
import { type ComposeStack, type Environment, loadStack } from '../../../spec/compose/index.js';

export function fakeFiles(files: Record<string, string>) {
  const reads: { path: string; maxBytes: number }[] = [];
  const readFile = (path: string, maxBytes: number): Uint8Array => {
    reads.push({ path, maxBytes });
    const data = files[path];
    if (data === undefined) throw new Error(`open ${path}: no such file or directory`);
    return Buffer.from(data);
  };
  return { readFile, reads };
}

export function stack(texts: string | string[], env: Environment = {}, files: Record<string, string> = {}, name = 'demo'): ComposeStack {
  const list = Array.isArray(texts) ? texts : [texts];
  return loadStack(
    list.map((text, i) => ({ name: `compose${i}.yml`, text })),
    name,
    { env, workingDir: '/srv/app', readFile: fakeFiles(files).readFile },
  );
}

export function error(texts: string | string[], env: Environment = {}, files: Record<string, string> = {}, name = 'demo'): string {
  try {
    stack(texts, env, files, name);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the compose files to be refused');
}

/** The one service of a stack. */
export function service(text: string, env: Environment = {}, files: Record<string, string> = {}) {
  const s = stack(text, env, files);
  if (s.services.length !== 1) throw new Error(`expected one service, got ${s.services.length}`);
  return s.services[0] as ComposeStack['services'][number];
}
