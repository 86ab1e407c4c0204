// `tsswarm ca client-cert`'s flags: --expiry as a Go duration from 1m to a
// year (default 30 days), --name the certificate's CN (default the user who
// ran the command, sudo's caller first), each refusal naming the flag; and
// --out required.
import { describe, expect, it } from 'vitest';
import { operatorName, parseOperatorExpiry } from '../../cli/client-cert.js';
import { main } from '../../cli/main.js';
import { usageError } from '../errors.js';

describe('tsswarm ca client-cert flags', () => {
  it('--expiry: 30 days by default, 1m to 8760h, refused outside naming the flag', () => {
    expect(parseOperatorExpiry(undefined)).toBe(30 * 86_400_000);
    expect(parseOperatorExpiry('1m')).toBe(60_000);
    expect(parseOperatorExpiry('8760h')).toBe(365 * 86_400_000);
    for (const bad of ['59s', '8761h', '0', 'soon', '-1h']) {
      const e = usageError(() => parseOperatorExpiry(bad));
      expect(e.field, bad).toBe('--expiry');
    }
    expect(usageError(() => parseOperatorExpiry('8761h')).message).toMatch(/--expiry must be a duration from 1m to 8760h/);
  });

  it("--name: given, else sudo's caller, else the login name; a bad one names the flag", () => {
    expect(operatorName('alice', {})).toBe('alice');
    expect(operatorName(undefined, { SUDO_USER: 'bob' })).toBe('bob');
    expect(operatorName(undefined, {})).toMatch(/^[A-Za-z0-9]/);
    expect(usageError(() => operatorName('a b', {})).field).toBe('--name');
  });

  it('--out is required, and arguments are refused, before anything is asked of the daemon', async () => {
    let err = '';
    const io = { stdout: { write: () => undefined }, stderr: { write: (s: string) => void (err += s) } };
    expect(await main(['ca', 'client-cert'], io)).not.toBe(0);
    expect(err).toMatch(/needs --out DIR/);
    err = '';
    expect(await main(['ca', 'client-cert', '--out', '/tmp/tss-x', 'extra'], io)).not.toBe(0);
    expect(err).toMatch(/accepts no arguments/);
  });
});
