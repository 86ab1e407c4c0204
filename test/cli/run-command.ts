// Runs `tsswarm GROUP ...` in-process as cli/main.ts does (one-line errors,
// exit 1), against one command group, capturing stdout and stderr.
import type { Command } from '../../cli/command.js';
import { closeClients, setHost } from '../../cli/client.js';
import { TsswarmError } from '../../lib/errors.js';

export async function runCommand(
  groups: Record<string, Command>,
  host: string | undefined,
  argv: string[],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const text = (s: string | Uint8Array): string => (typeof s === 'string' ? s : Buffer.from(s).toString());
  const io = {
    stdout: { write: (s: string | Uint8Array) => (out += text(s)) },
    stderr: { write: (s: string | Uint8Array) => (err += text(s)) },
  };
  setHost(host);
  const [name, ...rest] = argv;
  let code: number;
  try {
    code = await groups[name!]!.run(rest, io, `tsswarm ${name}`);
  } catch (e) {
    if (!(e instanceof TsswarmError)) throw e;
    err += `tsswarm: ${e.message}\n`;
    code = 1;
  } finally {
    closeClients();
  }
  return { code, out, err };
}
