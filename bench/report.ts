// Prints benchmark figures the way ../shared/BENCH.md fixes: one JSON object
// per line on stdout with exactly bench, system, case, metric, value, unit;
// a human-readable table on stderr.

export interface Figure {
  bench: string;
  system: string;
  case: string;
  metric: string;
  value: number;
  unit: string;
}

export class Report {
  readonly figures: Figure[] = [];
  constructor(readonly bench: string) {}

  add(system: string, c: string, metric: string, value: number, unit: string): void {
    const f: Figure = { bench: this.bench, system, case: c, metric, value: Math.round(value * 100) / 100, unit };
    this.figures.push(f);
    process.stdout.write(JSON.stringify(f) + '\n');
  }

  /** A peer that could not run is reported, never silently left out. */
  error(system: string, c: string, why: string): void {
    const f: Figure = { bench: this.bench, system, case: c, metric: 'error', value: 0, unit: why };
    this.figures.push(f);
    process.stdout.write(JSON.stringify(f) + '\n');
  }

  table(): void {
    const rows = this.figures.map((f) => [
      f.system,
      f.case,
      f.metric,
      f.metric === 'error' ? f.unit : String(f.value),
      f.metric === 'error' ? '' : f.unit,
    ]);
    const w = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length), 6));
    process.stderr.write(`\n${this.bench}\n`);
    for (const r of [['system', 'case', 'metric', 'value', 'unit'], ...rows])
      process.stderr.write(r.map((x, i) => x.padEnd(w[i]!)).join('  ') + '\n');
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
