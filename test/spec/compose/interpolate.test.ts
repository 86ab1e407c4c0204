// Variable substitution as docker stack deploy does it: from the given
// environment only, no nesting, bare names take defaults, values only (never
// keys), and docker's casts and error texts.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are compose interpolation, not template literals
import { describe, expect, it } from 'vitest';
import { substitute } from '../../../spec/compose/index.js';
import { error, service } from './helpers.js';

const env = { B: 'bee', EMPTY: '' };

describe('substitute', () => {
  it.each([
    ['$$HOME', '$HOME'],
    ['${UNSET-def}', 'def'],
    ['${UNSET:-def}', 'def'],
    ['${EMPTY:-soft}', 'soft'],
    ['${EMPTY-hard}', ''],
    ['${B:-x}', 'bee'],
    ['${B}', 'bee'],
    ['$B', 'bee'],
    ['x$B.y', 'xbee.y'],
    ['$UNSET', ''],
    ['$FOO-bar', 'bar'],
    ['$B-bar', 'bee'],
    ['${UNSET:-${B}}', '${B}'],
    ['${b}', ''],
    ['${EMPTY?e}', ''],
    ['${B:?e}', 'bee'],
    ['no dollars', 'no dollars'],
  ])('%s → %j', (input, output) => {
    expect(substitute(input, env)).toBe(output);
  });

  it.each(['${B:+x}', '$5', 'trailing $', '${}', '${B', '${-x}'])('%s is invalid', (input) => {
    expect(() => substitute(input, env)).toThrow();
  });
});

describe('interpolation in a compose file', () => {
  const web = (body: string) => `services:\n  web:\n    image: nginx\n    ${body}\n`;

  it('comes from the given environment only', () => {
    expect(service(web('environment: {A: "$B", C: "${NOPE:-d}"}'), { B: 'bee' }).TaskTemplate.ContainerSpec.Env).toEqual(['A=bee', 'C=d']);
  });

  it('substitutes values, never keys', () => {
    const s = service(web('labels: {"$B": "$B"}\n    environment: ["$B=1"]'), { B: 'bee' });
    expect(s.TaskTemplate.ContainerSpec.Labels).toEqual({ $B: 'bee', 'com.docker.stack.namespace': 'demo' });
    expect(s.TaskTemplate.ContainerSpec.Env).toEqual(['bee=1']);
  });

  it('casts a substituted replicas to an integer', () => {
    expect(service(web('deploy: {replicas: "${N}"}'), { N: '3' }).Mode).toEqual({ Replicated: { Replicas: 3 } });
    expect(error(web('deploy: {replicas: "${N}"}'), { N: 'x' })).toBe(
      'error while interpolating services.web.deploy.replicas: failed to cast to expected type: strconv.Atoi: parsing "x": invalid syntax',
    );
  });

  it('casts booleans as docker does (y, yes, on, ...)', () => {
    expect(service(web('read_only: "$R"'), { R: 'on' }).TaskTemplate.ContainerSpec.ReadOnly).toBe(true);
    expect(error(web('read_only: "$R"'), { R: 'maybe' })).toBe(
      'error while interpolating services.web.read_only: failed to cast to expected type: invalid boolean: maybe',
    );
  });

  it('a literal string where an integer belongs fails the schema', () => {
    expect(error(web('deploy: {replicas: "3"}'))).toBe('services.web.deploy.replicas must be a integer');
  });

  it('bad syntax names the path and quotes the value', () => {
    expect(error(web('environment: {X: "a${B:+x}"}'))).toBe(
      'invalid interpolation format for services.web.environment.X: "a${B:+x}"; you may need to escape any $ with another $',
    );
    expect(error(web('environment: ["X=$5"]'))).toBe(
      'invalid interpolation format for services.web.environment.[]: "X=$5"; you may need to escape any $ with another $',
    );
  });

  it('a required variable that is missing quotes its message', () => {
    expect(error(web('image: "${IMG:?set IMG}"').replace('    image: nginx\n', ''))).toBe(
      'invalid interpolation format for services.web.image: "required variable IMG is missing a value: set IMG"; you may need to escape any $ with another $',
    );
  });

  it('leaves x- keys at the root alone', () => {
    expect(service(`x-note: "$5"\n${web('user: "$$5"')}`).TaskTemplate.ContainerSpec.User).toBe('$5');
  });
});
