// cli/image.ts: table rows, sizes, references, and what is sent to the daemon
// (an absolute archive path), with the daemon client replaced by a recorder.
import { resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runCommand } from './run-command.js';

const calls: { method: string; req: object }[] = [];
vi.mock('../../cli/client.js', async (orig) => ({
  ...(await orig<typeof import('../../cli/client.js')>()),
  daemonApi: async (method: string, req: object = {}) => {
    calls.push({ method, req });
    if (method === 'loadImage') return { images: [{ references: ['app:1'], id: 'sha256:abc', size: 10, createdAt: 0 }] };
    if (method === 'listImages')
      return {
        images: [{ references: ['busybox:1.36', 'localhost:5000/busybox'], id: 'sha256:0123456789abcdef', size: 4_261_000, createdAt: 0 }],
      };
    if (method === 'removeImage') return { removed: ['app:1', 'sha256:abc'] };
    return { images: [] };
  },
}));

const { humanSize, imageRows, splitReference } = await import('../../cli/image.js');
const { imageCommand } = await import('../../cli/image.js');

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return runCommand({ image: imageCommand }, undefined, argv);
}

describe('image', () => {
  it('sizes and references read like docker', () => {
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(4_261_000)).toBe('4.26MB');
    expect(humanSize(1_000_000_000)).toBe('1GB');
    expect(splitReference('busybox:1.36')).toEqual(['busybox', '1.36']);
    expect(splitReference('localhost:5000/app')).toEqual(['localhost:5000/app', 'latest']);
    expect(splitReference('app@sha256:ff')).toEqual(['app', '<none>']);
  });

  it('ls has one row per reference', () => {
    expect(
      imageRows([
        { references: ['b:2', 'a:1'], id: 'sha256:0123456789abcdef', size: 1500, createdAt: 0, repoDigests: [] },
        { references: [], id: 'sha256:ffff', size: 1, createdAt: 0, repoDigests: [] },
      ]),
    ).toEqual([
      ['<none>', '<none>', 'ffff', '', '1B'],
      ['a', '1', '0123456789ab', '', '1.5kB'],
      ['b', '2', '0123456789ab', '', '1.5kB'],
    ]);
  });

  it('ls shows a repository known only by its digest with tag <none>, and --digests the DIGEST column', () => {
    const d = `sha256:${'5'.repeat(64)}`;
    const img = { references: ['a:1'], id: 'sha256:0123456789abcdef', size: 1, createdAt: 0, repoDigests: [`a@${d}`, `reg:5000/x@${d}`] };
    expect(imageRows([img])).toEqual([
      ['a', '1', '0123456789ab', '', '1B'],
      ['reg:5000/x', '<none>', '0123456789ab', '', '1B'],
    ]);
    expect(imageRows([img, { ...img, id: 'sha256:ffff', references: [], repoDigests: [] }], 0, { digests: true })).toEqual([
      ['<none>', '<none>', '<none>', 'ffff', '', '1B'],
      ['a', '1', d, '0123456789ab', '', '1B'],
      ['reg:5000/x', '<none>', d, '0123456789ab', '', '1B'],
    ]);
  });

  it('load sends an absolute path and the tag', async () => {
    calls.length = 0;
    const r = await run('image', 'load', '-i', 'some/app.tar', '--tag', 'app:1');
    expect(r).toEqual({ code: 0, out: 'Loaded image: app:1\n', err: '' });
    expect(calls).toEqual([{ method: 'loadImage', req: { path: resolve('some/app.tar'), tag: 'app:1' } }]);
  });

  it('ls prints the table; rm and pull call the daemon', async () => {
    calls.length = 0;
    const ls = await run('image', 'ls');
    expect(ls.out).toBe(
      'REPOSITORY               TAG      IMAGE ID       CREATED   SIZE\nbusybox                  1.36     0123456789ab             4.26MB\nlocalhost:5000/busybox   latest   0123456789ab             4.26MB\n',
    );
    expect((await run('image', 'rm', '-f', 'app:1')).out).toBe('Untagged: app:1\nDeleted: sha256:abc\n');
    await run('image', 'pull', '--insecure', 'localhost:5000/app:1');
    expect(calls.slice(1)).toEqual([
      { method: 'removeImage', req: { reference: 'app:1', force: true } },
      { method: 'pullImage', req: { reference: 'localhost:5000/app:1', insecure: true } },
    ]);
  });
});
