import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Broker } from './helpers/broker.js';
import { Proxy } from './helpers/proxy.js';
import { heraldFor, start, TEST_TIMEOUT_MS } from './helpers/setup.js';
import { waitFor } from './helpers/wait.js';

let broker: Broker;
before(async () => {
  broker = await Broker.start();
});
after(() => broker.stop());

it('removes after a reconnect what was recalled while it was offline, and keeps what came back', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const herald = await heraldFor(t, broker);
  await herald.descriptor({ level: { bands: [[30, 39]] } });
  const gone = await herald.send('all');
  const kept = await herald.send('tag/level/30-39', { kind: 'notice' });
  const waiting = await herald.send('all', { startsAt: Date.now() + 3_600_000 });
  const proxy = await Proxy.start(broker.wsPort);
  t.after(() => proxy.close());
  const { client, rec } = start(t, broker, herald, {
    url: proxy.wsUrl,
    tags: { level: 35 },
    reconnect: { minMs: 50, maxMs: 200 },
    recallGraceMs: 2000,
  });
  await rec.message(gone.campaign);
  await rec.message(kept.campaign);
  await herald.receipt(waiting.id, 'delivered');

  // Cut off, the client misses the recall of gone (and of waiting, never
  // shown), and a new send, which it gets retained once back.
  proxy.cut();
  await herald.remove(`all/marquee/${gone.campaign}`);
  await herald.remove(`all/marquee/${waiting.campaign}`);
  const fresh = await herald.send('all');
  proxy.resume();

  await rec.message(fresh.campaign);
  const removal = await rec.removed(gone.campaign);
  assert.equal(removal.reason, 'recalled');
  assert.equal(rec.connects, 2);
  assert.deepEqual(rec.removes.map((r) => r.campaign), [gone.campaign], 'kept came back; waiting was never shown');
  assert.equal(rec.shownOf(kept.campaign).length, 1);
  assert.equal(client.stats().duplicates, 1, 'the copy of kept that confirmed it');
  assert.equal(client.stats().removals, 2);
  assert.deepEqual(client.messages().map((m) => m.campaign).sort(), [kept.campaign, fresh.campaign].sort());

  // The ids of what was removed are forgotten: a copy that comes back later
  // (a broker slower than the grace) shows the message again.
  await herald.send('all', { id: gone.id, campaign: gone.campaign });
  await waitFor(() => rec.shownOf(gone.campaign).length === 2, 'gone shown again');
});
