// A node's generic resources from daemon.json (ours and dockerd's spelling)
// and the --node-generic-resource flag; counts only.
import { describe, expect, it } from 'vitest';
import { parseDaemonConfig, resolveDaemonConfig } from '../../node/daemon-config.js';

describe('node generic resources', () => {
  it('are read from the file, in our spelling or dockerd’s', () => {
    expect(parseDaemonConfig('{"nodeGenericResources": ["gpu=4", "fpga=1"]}', 'd.json').nodeGenericResources).toEqual([
      { kind: 'gpu', value: 4 },
      { kind: 'fpga', value: 1 },
    ]);
    expect(parseDaemonConfig('{"node-generic-resources": ["gpu=2"]}', 'd.json').nodeGenericResources).toEqual([{ kind: 'gpu', value: 2 }]);
  });

  it('the flag (comma-separated) overrides the file', () => {
    const c = resolveDaemonConfig({
      flags: { 'node-generic-resource': 'gpu=8,ssd=1' },
      file: { nodeGenericResources: [{ kind: 'gpu', value: 1 }] },
    });
    expect(c.nodeGenericResources).toEqual([
      { kind: 'gpu', value: 8 },
      { kind: 'ssd', value: 1 },
    ]);
  });

  it('refuses named resources, a kind given twice and a non-list, naming the key', () => {
    expect(() => parseDaemonConfig('{"node-generic-resources": ["gpu=GPU-1"]}', 'd.json')).toThrow(
      /"node-generic-resources" in d.json: "gpu=GPU-1": named generic resources/,
    );
    expect(() => parseDaemonConfig('{"nodeGenericResources": ["gpu=1", "gpu=2"]}', 'd.json')).toThrow(/gpu is given twice/);
    expect(() => parseDaemonConfig('{"nodeGenericResources": "gpu=1"}', 'd.json')).toThrow(/a list of KIND=COUNT entries/);
    expect(() => resolveDaemonConfig({ flags: { 'node-generic-resource': 'gpu' } })).toThrow(
      /^--node-generic-resource: "gpu" is not KIND=COUNT/,
    );
  });
});
