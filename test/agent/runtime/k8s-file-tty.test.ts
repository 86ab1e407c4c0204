// conmon's k8s-file records of a --tty container: the pty turns each \n into
// \r\n, so every record's text ends in a CR, which the reader keeps (as
// Docker's logs of a -t container keep it) instead of dropping the line.
import { describe, expect, it } from 'vitest';
import { K8sFileParser } from '../../../agent/runtime/runtime.js';

describe("a --tty container's log records", () => {
  it('are read with their CR, whole and partial', () => {
    const p = new K8sFileParser();
    const out = p.push(
      Buffer.from(
        '2026-12-08T01:17:44.779128303+00:00 stdout F /dev/pts/0\r\n' +
          '2026-12-08T01:17:44.779529699+00:00 stdout P 24\n' +
          '2026-12-08T01:17:44.779529700+00:00 stdout F  80\r\n',
      ),
    );
    expect(out.map((l) => [l.stream, l.line.toString()])).toEqual([
      ['stdout', '/dev/pts/0\r\n'],
      ['stdout', '24 80\r\n'],
    ]);
  });
});
