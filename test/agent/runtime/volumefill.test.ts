// agent/runtime/volumefill.ts: what an image's VOLUME paths may have copied
// into a container's new volumes (never the whole rootfs, no directory
// aliased by a link), and the one allowance all the copies share.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkVolumeFills, measureFill, type VolumeFill } from '../../../agent/runtime/volumefill.js';

const ROOT = '/var/lib/tsswarm/containers/tssc1/bundle/rootfs';
const fill = (target: string, source: string): VolumeFill => ({ target, source: `${ROOT}${source}`, volume: `/v${target}` });

describe('which image directories may fill new volumes', () => {
  it('refuses a VOLUME that is the rootfs itself (a link to /), naming it and the fix', () => {
    expect(() => checkVolumeFills(ROOT, [fill('/data', '/srv'), fill('/all', '')])).toThrow(
      /^volume at \/all: the image's \/all is its root directory \(through a link\).*volume-nocopy/,
    );
    expect(() => checkVolumeFills(`${ROOT}/`, [fill('/all', '/')])).toThrow(/root directory/);
  });

  it('refuses two volumes that are the same directory, or one inside the other, through a link', () => {
    expect(() => checkVolumeFills(ROOT, [fill('/a', '/a'), fill('/b', '/a')])).toThrow(
      /^volumes at \/a and \/b: the image's \/b is the same directory as its \/a through a link/,
    );
    expect(() => checkVolumeFills(ROOT, [fill('/a', '/a'), fill('/b', '/a/x')])).toThrow(/the image's \/b is inside its \/a/);
    // Nested targets whose inner directory is reached through a link elsewhere: an alias too.
    expect(() => checkVolumeFills(ROOT, [fill('/a', '/a'), fill('/a/b', '/a/c')])).toThrow(/the image's \/a\/b is inside its \/a/);
    // A link pointing the inner target back at the outer one.
    expect(() => checkVolumeFills(ROOT, [fill('/a', '/a'), fill('/a/up', '/a')])).toThrow(/same directory/);
  });

  it("allows Docker's nested VOLUME paths with no link between, and unrelated ones", () => {
    expect(() =>
      checkVolumeFills(ROOT, [fill('/var/lib', '/var/lib'), fill('/var/lib/mysql/', '/var/lib/mysql'), fill('/srv', '/data')]),
    ).not.toThrow();
    // A sibling whose name starts the same is not inside.
    expect(() => checkVolumeFills(ROOT, [fill('/a', '/a'), fill('/ab', '/ab')])).not.toThrow();
  });
});

describe('the allowance the copies share', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tss-volfill-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes every volume from one allowance of bytes and files, and names the volume that passes it', async () => {
    mkdirSync(join(dir, 'a', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'a', 'f'), Buffer.alloc(600));
    writeFileSync(join(dir, 'a', 'sub', 'g'), Buffer.alloc(300));
    const left = { bytes: 2000, entries: 100 };
    await measureFill(join(dir, 'a'), '/a', left);
    expect(left).toEqual({ bytes: 1100, entries: 97 });
    await measureFill(join(dir, 'a'), '/b', left);
    expect(left).toEqual({ bytes: 200, entries: 94 });
    await expect(measureFill(join(dir, 'a'), '/c', left)).rejects.toThrow(
      /^volume at \/c: the image's content for this container's new volumes passes/,
    );
    await expect(measureFill(join(dir, 'a'), '/d', { bytes: 1e9, entries: 2 })).rejects.toThrow(/^volume at \/d:/);
  });
});
