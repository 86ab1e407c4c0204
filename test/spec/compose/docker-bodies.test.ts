// A stack using most keys, converted as docker stack deploy converts it: the
// fixture holds the POST bodies docker CLI 28.2.2 sent for it to a fake Engine
// API (rich-stack.docker-bodies.json says how they were recorded), and every
// one of ours must equal docker's. Two differences are by design: docker
// fills SecretID/ConfigID from its lookups (ours are left to the caller), and
// at API < 1.44 its client adds CheckDuplicate to a network create.
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadStack } from '../../../spec/compose/index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const recorded = JSON.parse(readFileSync(join(fixtures, 'rich-stack.docker-bodies.json'), 'utf8')) as {
  bodies: { path: string; body: { Name: string } & Record<string, unknown> }[];
};

const stack = loadStack([{ name: 'rich-stack.yml', text: readFileSync(join(fixtures, 'rich-stack.yml'), 'utf8') }], 'demo', {
  env: { HOME: '/home/alice' },
  // Where docker ran: relative binds became /tmp/fake/...
  workingDir: '/tmp/fake',
  readFile: (p) => {
    if (dirname(p) !== '/tmp/fake') throw new Error(`unexpected read of ${p}`);
    return readFileSync(join(fixtures, basename(p)));
  },
});

const withoutIds = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (k, x) => (k === 'SecretID' || k === 'ConfigID' ? '' : x)));

describe('the bodies docker stack deploy sends', () => {
  it('recorded one per object', () => {
    expect(recorded.bodies.map((b) => `${b.path} ${b.body.Name}`).sort()).toEqual(
      [
        ...stack.networks.map((n) => `/networks/create ${n.Name}`),
        ...stack.secrets.map((n) => `/secrets/create ${n.Name}`),
        ...stack.configs.map((n) => `/configs/create ${n.Name}`),
        ...stack.services.map((n) => `/services/create ${n.Name}`),
      ].sort(),
    );
  });

  it.each(recorded.bodies.map((b) => [b.path, b.body.Name, b.body] as const))('%s %s equals ours', (path, name, body) => {
    const ours = {
      '/networks/create': stack.networks,
      '/secrets/create': stack.secrets,
      '/configs/create': stack.configs,
      '/services/create': stack.services,
    }[path]?.find((o) => o.Name === name);
    const { CheckDuplicate: _, ...theirs } = body;
    expect(withoutIds(ours)).toEqual(withoutIds(theirs));
  });

  it('warns as docker did', () => {
    expect(stack.warnings).toEqual(['Ignoring unsupported options: restart\n\n']);
  });
});
