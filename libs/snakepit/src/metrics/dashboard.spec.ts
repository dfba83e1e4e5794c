import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SNAKEPIT_METRICS } from './metric-providers';

const DASHBOARD = join(__dirname, '..', '..', '..', '..', 'docs', 'grafana', 'snakepit-dashboard.json');

describe('the Grafana dashboard', () => {
  it('queries only metrics Snakepit exports', () => {
    const used = new Set([...readFileSync(DASHBOARD, 'utf8').matchAll(/snakepit_[a-z_]+/g)].map(([name]) => name.replace(/_(bucket|count|sum)$/, '')));
    expect([...used].filter((name) => !Object.values<string>(SNAKEPIT_METRICS).includes(name))).toEqual([]);
    expect(used.size).toBe(Object.keys(SNAKEPIT_METRICS).length);
  });
});
