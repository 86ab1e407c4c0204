// Hostile input: a huge file, an alias bomb, deep nesting, and the files a
// compose file names (each read through the caller, bounded).
import { describe, expect, it } from 'vitest';
import { MAX_ALIAS_COUNT, MAX_COMPOSE_BYTES, MAX_DEPTH } from '../../../spec/compose/index.js';
import { flowDepth } from '../../../spec/compose/yaml.js';
import { error } from './helpers.js';

describe('hostile compose files', () => {
  it('refuses a 20 MB file without parsing it', () => {
    const text = `services:\n  web:\n    image: a\n    labels:\n${'      k: v\n'.repeat(2_000_000)}`;
    expect(text.length).toBeGreaterThan(20_000_000);
    expect(error(text)).toBe(`compose file is larger than ${MAX_COMPOSE_BYTES} bytes: split it, or move data into files`);
  });

  it('parses a file at the size bound, and refuses one byte past it', () => {
    let text = 'services:\n';
    for (let i = 0; text.length < MAX_COMPOSE_BYTES - 100; i++) text += `  s${i}:\n    image: nginx\n    environment: [A=1]\n`;
    expect(error(`${text}  bad: {image: a, nope: 1}\n`)).toBe('services.bad Additional property nope is not allowed');
    expect(error(`${text}${'#'.repeat(200)}\n`)).toMatch(/^compose file is larger than/);
  }, 20_000);

  it('refuses a billion-laughs alias bomb', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++)
      levels.push(
        `${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(10)
          .fill(`*${'abcdefghi'[i - 1]}`)
          .join(', ')}]`,
      );
    const text = `x-bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\nservices: {}\n`;
    expect(error(text)).toMatch(/^yaml: Excessive alias count/);
    expect(MAX_ALIAS_COUNT).toBeLessThanOrEqual(10_000);
  });

  it('refuses nesting deeper than the bound, flow or block', () => {
    expect(error(`x-deep: ${'['.repeat(200)}${']'.repeat(200)}\nservices: {}`)).toBe(`yaml: nesting deeper than ${MAX_DEPTH} levels`);
    let block = 'x-deep:\n';
    for (let i = 1; i <= 100; i++) block += `${'  '.repeat(i)}k${i}:\n`;
    expect(error(`${block}services: {}`)).toBe(`yaml: nesting deeper than ${MAX_DEPTH} levels`);
  });

  it('survives pathological nesting (the yaml package alone runs out of memory on 50,000 closed brackets)', () => {
    expect(error(`x: ${'['.repeat(20_000)}`)).toMatch(/^yaml: /);
    expect(error(`x: ${'['.repeat(50_000)}${']'.repeat(50_000)}`)).toBe(`yaml: nesting deeper than ${MAX_DEPTH} levels`);
    let block = 'x:\n';
    for (let i = 1; i <= 1000; i++) block += `${' '.repeat(i)}k${i}:\n`;
    expect(error(block)).toMatch(/^yaml: /);
  });

  it('counts brackets only outside quoted scalars and comments', () => {
    const deep = '['.repeat(100);
    expect(flowDepth(`a: "${deep}"\nb: '${deep}'\n# ${deep}\nc: it's [x, {y: z}]\n`)).toBe(2);
  });
});
