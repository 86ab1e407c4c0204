// How the CLI pins an image the daemon resolved, as the docker CLI does.
import { describe, expect, it } from 'vitest';
import { applyPin, digestWarning, imageWithTag, pinnedImage, placementPlatforms } from '../../cli/resolve-image.js';
import { ContainerSpec, Placement, ServiceSpec, TaskSpec } from '../../proto/gen/objects.js';

const D = `sha256:${'9'.repeat(64)}`;

describe('pinning', () => {
  it('tags the familiar name with latest and adds the digest; a pinned reference stays as it is', () => {
    expect(imageWithTag('busybox')).toBe('busybox:latest');
    expect(imageWithTag('docker.io/library/busybox:1.36')).toBe('busybox:1.36');
    expect(imageWithTag('localhost:5000/a/b')).toBe('localhost:5000/a/b:latest');
    expect(pinnedImage('busybox', D)).toBe(`busybox:latest@${D}`);
    expect(pinnedImage('10.0.0.1:5000/tss/bb:v1', D)).toBe(`10.0.0.1:5000/tss/bb:v1@${D}`);
    expect(pinnedImage(`busybox@sha256:${'1'.repeat(64)}`, D)).toBe(`busybox@sha256:${'1'.repeat(64)}`);
  });

  it('places on os and architecture only, arm on any architecture', () => {
    expect(
      placementPlatforms([
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm' },
      ]),
    ).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: '' },
    ]);
  });

  it('puts the pin in the spec, keeping the placement it had; no platforms leaves placement alone', () => {
    const spec = ServiceSpec.create({
      task: TaskSpec.create({
        container: ContainerSpec.create({ image: 'busybox' }),
        placement: Placement.create({ constraints: ['node.role==worker'] }),
      }),
    });
    applyPin(spec, { image: `busybox:latest@${D}`, platforms: [{ os: 'linux', architecture: 'amd64' }] });
    expect(spec.task.container.image).toBe(`busybox:latest@${D}`);
    expect(spec.task.placement).toMatchObject({ constraints: ['node.role==worker'], platforms: [{ os: 'linux', architecture: 'amd64' }] });
    const bare = ServiceSpec.create({ task: TaskSpec.create({ container: ContainerSpec.create({ image: 'x' }) }) });
    applyPin(bare, { image: `x:latest@${D}`, platforms: [] });
    expect(bare.task.placement).toBeUndefined();
    applyPin(bare, undefined);
    expect(bare.task.container.image).toBe(`x:latest@${D}`);
  });

  it('warns, naming the image and the reason, when the registry cannot be asked', () => {
    expect(digestWarning('busybox:latest', 'no route')).toMatch(
      /^image busybox:latest could not be accessed on a registry to record\nits digest \(no route\)/,
    );
  });
});
