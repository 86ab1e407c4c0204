// Names for services created without one, docker style (`eager_turing`).
import { randomInt } from 'node:crypto';

const adjectives = [
  'admiring',
  'brave',
  'clever',
  'dazzling',
  'eager',
  'focused',
  'gallant',
  'happy',
  'jolly',
  'keen',
  'lucid',
  'modest',
  'nifty',
  'optimistic',
  'quirky',
  'relaxed',
  'serene',
  'tender',
  'upbeat',
  'vibrant',
  'wizardly',
  'zealous',
];
const surnames = [
  'babbage',
  'curie',
  'dijkstra',
  'euler',
  'fermi',
  'gauss',
  'hopper',
  'johnson',
  'knuth',
  'lamport',
  'liskov',
  'lovelace',
  'noether',
  'pascal',
  'ritchie',
  'shannon',
  'thompson',
  'turing',
  'wozniak',
];

export function randomServiceName(pick: (n: number) => number = randomInt): string {
  return `${adjectives[pick(adjectives.length)]}_${surnames[pick(surnames.length)]}`;
}
