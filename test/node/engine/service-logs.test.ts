// Service and task logs as dockerd streams them to the docker CLI: multiplexed
// frames, or for a --tty service the lines alone (the CLI copies a TTY's
// stream as it comes, and would print a frame's header bytes).
import { describe, expect, it } from 'vitest';
import { logContentType, logFrames } from '../../../node/engine/services.js';
import type { LogChunk } from '../../../proto/gen/control.js';

const chunk = (data: string): LogChunk => ({
  taskId: 't1',
  nodeId: 'n1',
  slot: 1,
  stream: 'stdout',
  data: new TextEncoder().encode(data),
  time: Date.UTC(2026, 0, 1),
  serviceName: 'web',
  serviceId: 's1',
});
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('logs of a --tty service', () => {
  it('are a raw stream of the lines with their CR, details first; other services get 8-byte frames', () => {
    const o = { details: true, timestamps: false };
    const raw = logFrames(chunk('/dev/pts/0\r\nhi\r\n'), 's1', { ...o, raw: true });
    expect(raw.map(text)).toEqual([
      'com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 /dev/pts/0\r\n',
      'com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hi\r\n',
    ]);
    const framed = logFrames(chunk('hi\n'), 's1', { ...o, details: false });
    expect([...framed[0]!.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 3]);
    expect(text(framed[0]!.subarray(8))).toBe('hi\n');
  });

  it('are sent as a raw stream whatever the API version; others multiplexed from 1.42 on', () => {
    expect(logContentType('1.47', true)).toBe('application/vnd.docker.raw-stream');
    expect(logContentType('1.41', true)).toBe('application/vnd.docker.raw-stream');
    expect(logContentType('1.47', false)).toBe('application/vnd.docker.multiplexed-stream');
    expect(logContentType('1.41', false)).toBe('application/vnd.docker.raw-stream');
  });
});
