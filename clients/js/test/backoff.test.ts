import assert from 'node:assert/strict';
import { it } from 'node:test';
import { backoffDelay, DEFAULT_BACKOFF } from '@heraldpush/client';

it('backoffDelay doubles from minMs to maxMs, times a random factor in 0.5-1.5', () => {
  const b = DEFAULT_BACKOFF;
  const bases = [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000];
  bases.forEach((base, attempt) => {
    assert.equal(backoffDelay(attempt, b, () => 0), base / 2, `lowest at attempt ${attempt}`);
    assert.equal(backoffDelay(attempt, b, () => 0.5), base, `middle at attempt ${attempt}`);
    assert.equal(backoffDelay(attempt, b, () => 0.999999), Math.round(base * 1.499999), `highest at attempt ${attempt}`);
  });
  assert.equal(backoffDelay(10_000, b, () => 0.5), 60000, 'no overflow after many attempts');
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(3, b);
    assert.ok(d >= 4000 && d <= 12000, `${d} within 0.5-1.5 of 8000`);
  }
  assert.equal(backoffDelay(0, { minMs: 0, maxMs: 0 }, () => 0), 1, 'never 0, which would turn reconnection off');
});
