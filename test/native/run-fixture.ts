// Runs one of test/native/fixtures/ in a child process under tsx (native calls
// that change process-wide state stay out of the test worker) and parses the
// JSON line it prints.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export function runFixture<T>(name: string, ...args: string[]): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture(name), ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`fixture ${name} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
