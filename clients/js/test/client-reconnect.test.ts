import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { connect } from '@heraldpush/client';
import { Broker } from './helpers/broker.js';
import { heraldFor, marker, start, TEST_TIMEOUT_MS } from './helpers/setup.js';
import { waitFor } from './helpers/wait.js';

let broker: Broker;
before(async () => {
  broker = await Broker.start();
});
after(() => broker.stop());

it('reconnects with backoff and jitter after the broker dies, subscribes again, and shows only what is new', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const herald = await heraldFor(t, broker);
  await herald.descriptor({ level: { bands: [[30, 39]] } });
  const backoff = { minMs: 100, maxMs: 400 };
  const { client, rec } = start(t, broker, herald, { tags: { level: 35 }, reconnect: backoff });
  const a = await herald.send('tag/level/30-39');
  await rec.message(a.campaign);
  await waitFor(() => client.stats().receiptsSent === 1, 'the broker acknowledging the delivered receipt of a');
  const other = connect({ url: broker.wsUrl, game: herald.game, player: 'p2' });
  t.after(() => other.close()); // should an assertion fail before the close below
  await waitFor(() => other.connected, 'a second client connected');

  await broker.kill();
  // Every wait: minMs doubling per failed attempt up to maxMs, times 0.5-1.5.
  await waitFor(() => rec.reconnecting.length >= 5, 'five reconnection attempts scheduled');
  rec.reconnecting.slice(0, 5).forEach(({ delayMs, attempt }, i) => {
    assert.equal(attempt, i);
    const base = Math.min(backoff.maxMs, backoff.minMs * 2 ** attempt);
    assert.ok(delayMs >= base * 0.5 && delayMs <= base * 1.5, `wait ${delayMs} ms before attempt ${attempt + 1}, base ${base}`);
  });
  assert.ok(rec.offlines >= 1);
  assert.equal(client.connected, false);
  assert.equal(client.displayed(a.id), true, 'said offline, sent once connected again');
  await other.close(); // does not wait for a broker that is gone

  await broker.run();
  await waitFor(() => rec.connects >= 2, 'the client connected again');
  await waitFor(() => client.stats().receiptsSent === 2, 'the broker acknowledging the displayed receipt said offline');

  // The restarted broker kept nothing: Herald publishes again, as it does
  // after a restart. The tag subscription came back without a new descriptor.
  await waitFor(() => herald.connected, 'Herald connected again');
  await herald.send('tag/level/30-39', { id: a.id, campaign: a.campaign });
  const b = await herald.send('tag/level/30-39');
  await rec.message(b.campaign);
  await marker(herald, rec);
  assert.equal(rec.shownOf(a.campaign).length, 1, 'what was shown before is not shown again');
  assert.equal(client.stats().duplicates, 1);
});
