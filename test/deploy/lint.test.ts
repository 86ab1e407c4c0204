// What can be checked of the VM definitions where no VM can run: `vagrant
// validate` on the Vagrantfile, `cloud-init schema` on the multipass
// cloud-config, `systemd-analyze verify` on the unit, and shellcheck on every
// shell script in deploy/ and scripts/.
// A check is skipped, with the reason printed, only when its tool is missing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { have } from '../have.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

function missing(tool: string, pkg: string): string {
  // A PATH lookup, not `tool --version`: vagrant takes seconds to start.
  if (have('sh', ['-c', `command -v ${tool}`])) return '';
  const why = `${tool} is not installed (apt-get install ${pkg}; scripts/setup.sh installs it)`;
  console.log(`deploy lint: skipped the ${tool} checks: ${why}`);
  return why;
}

/** Every *.sh under a folder, skipping dependencies and VM state. */
function shellScripts(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e === '.vagrant' || e === '.cluster') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...shellScripts(p));
    else if (e.endsWith('.sh')) out.push(relative(repo, p));
  }
  return out.sort();
}

const scripts = [...shellScripts(join(repo, 'deploy')), ...shellScripts(join(repo, 'scripts'))];

describe('shellcheck', () => {
  const noShellcheck = missing('shellcheck', 'shellcheck');

  it('finds the scripts to check (install.sh, multipass, scripts/)', () => {
    expect(scripts).toEqual(
      expect.arrayContaining([
        'deploy/install.sh',
        'deploy/multipass/up.sh',
        'deploy/multipass/down.sh',
        'scripts/setup.sh',
        'scripts/test.sh',
        'scripts/demo.sh',
      ]),
    );
  });

  it.skipIf(!!noShellcheck).each(scripts)('finds nothing to report in %s', (script) => {
    // -x follows `source` (directives name paths from the repository root).
    const r = spawnSync('shellcheck', ['-x', script], { cwd: repo, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('vagrant validate', () => {
  const noVagrant = missing('vagrant', 'vagrant');
  // Vagrant's own state goes to a temporary directory, not the checkout or ~/.vagrant.d.
  const home = mkdtempSync(join(tmpdir(), 'tss-vagrant-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  const validate = (env: Record<string, string> = {}) =>
    spawnSync('vagrant', ['validate', '--ignore-provider', '--no-color'], {
      cwd: join(repo, 'deploy', 'vagrant'),
      encoding: 'utf8',
      env: {
        ...process.env,
        VAGRANT_HOME: join(home, 'home'),
        VAGRANT_DOTFILE_PATH: join(home, 'dot'),
        VAGRANT_CHECKPOINT_DISABLE: '1',
        ...env,
      },
    });
  const machines = (out: string): string[] => [...out.matchAll(/^==> (\S+): Ignoring provider config/gm)].map((m) => m[1]!);

  it.skipIf(!!noVagrant)('accepts the Vagrantfile, which defines 3 managers and 2 workers by default', () => {
    const r = validate();
    expect(r.stdout).toContain('Vagrantfile validated successfully');
    expect(r.status).toBe(0);
    expect(machines(r.stdout)).toEqual(['manager1', 'manager2', 'manager3', 'worker1', 'worker2']);
  });

  it.skipIf(!!noVagrant)('the counts at the top can be changed from the environment', () => {
    const r = validate({ TSSWARM_MANAGERS: '1', TSSWARM_WORKERS: '3' });
    expect(r.status).toBe(0);
    expect(machines(r.stdout)).toEqual(['manager1', 'worker1', 'worker2', 'worker3']);
  });

  it.skipIf(!!noVagrant)('refuses a cluster without managers, saying why', () => {
    const r = validate({ TSSWARM_MANAGERS: '0' });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('TSSWARM_MANAGERS must be 1 to 89 (got 0)');
  });
});

describe('cloud-init schema', () => {
  const noCloudInit = missing('cloud-init', 'cloud-init');

  it.skipIf(!!noCloudInit)('accepts the multipass cloud-config', () => {
    const r = spawnSync('cloud-init', ['schema', '--config-file', join(repo, 'deploy', 'multipass', 'cloud-init.yaml')], {
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toContain('Valid cloud-config');
    expect(r.status).toBe(0);
  });
});

describe('systemd-analyze verify', () => {
  const noSystemd = missing('systemd-analyze', 'systemd');
  const dir = mkdtempSync(join(tmpdir(), 'tss-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!!noSystemd)('accepts tsswarm.service as install.sh fills it in, with no warning', () => {
    // An executable that exists here stands in for the installed command (verify checks ExecStart's path).
    const unit = readFileSync(join(repo, 'deploy', 'systemd', 'tsswarm.service'), 'utf8')
      .replaceAll('@TSSWARM_BIN@', process.execPath)
      .replaceAll('@TSSWARM_CONFIG@', '/etc/tsswarm/daemon.json')
      .replaceAll('@TSSWARM_APP@', '/usr/local/lib/tsswarm');
    expect(unit).not.toMatch(/@TSSWARM_/);
    const file = join(dir, 'tsswarm.service');
    writeFileSync(file, unit);
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
