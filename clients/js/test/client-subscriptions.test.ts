import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@heraldpush/client';
import { Broker } from './helpers/broker.js';
import { Recorder } from './helpers/recorder.js';
import { heraldFor, marker, start, TEST_TIMEOUT_MS } from './helpers/setup.js';

let broker: Broker;
before(async () => {
  broker = await Broker.start();
});
after(() => broker.stop());

const opts = { timeout: TEST_TIMEOUT_MS };

describe('subscriptions against Mosquitto', { concurrency: true }, () => {
  it('subscribes to its tag value and band from the descriptor, and to nothing it does not belong to', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    await herald.descriptor({ region: { values: ['eu', 'na'] }, level: { bands: [[1, 9], [10, 19], [20, 29], [30, 39]] } });
    const wanted = ['all', 'player/p1', 'server/s1', 'tag/region/eu', 'tag/level/30-39'];
    const unwanted = ['player/p2', 'server/s2', 'tag/region/na', 'tag/level/20-29', 'tag/vip/gold'];
    const campaigns = new Map<string, string>();
    for (const where of [...wanted, ...unwanted]) campaigns.set((await herald.send(where)).campaign, where);

    const { rec } = start(t, broker, herald, { tags: { region: 'eu', level: 35, vip: 'gold' } });
    for (const [campaign, where] of campaigns) if (wanted.includes(where)) await rec.message(campaign);
    const m = await marker(herald, rec);

    const reached = rec.messages.filter((x) => x.campaign !== m).map((x) => campaigns.get(x.campaign));
    assert.deepEqual(reached.sort(), [...wanted].sort());
    assert.equal(rec.descriptors.length, 1);
    assert.deepEqual(rec.descriptors[0]?.tags.level, { bands: [[1, 9], [10, 19], [20, 29], [30, 39]] });
  });

  it('follows a new descriptor: subscribes to new tag topics and unsubscribes from gone ones', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    await herald.descriptor({ region: { values: ['na'] }, level: { bands: [[30, 39]] } }, '2026-11-27T10:00:00Z');
    const before = await herald.send('tag/level/30-39');
    const { rec } = start(t, broker, herald, { tags: { region: 'eu', level: 35 } });
    await rec.message(before.campaign);

    const band = await herald.send('tag/level/35-39');
    const region = await herald.send('tag/region/eu');
    await herald.descriptor({ region: { values: ['eu', 'na'] }, level: { bands: [[30, 34], [35, 39]] } }, '2026-11-27T11:00:00Z');
    await rec.message(band.campaign);
    await rec.message(region.campaign);
    const gone = await herald.send('tag/level/30-39');
    await marker(herald, rec, 'tag/level/35-39');

    assert.deepEqual(rec.shownOf(gone.campaign), [], 'the gone band is unsubscribed');
    assert.deepEqual(
      rec.descriptors.map((d) => d.updatedAt),
      ['2026-11-27T10:00:00Z', '2026-11-27T11:00:00Z'],
    );
  });

  it('gets retained messages when it connects later, over WebSocket and over mqtt:// under Node', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const notice = await herald.send('all', { kind: 'notice' });
    const ad = await herald.send('player/p1', { kind: 'ad', priority: 7 });
    for (const url of [broker.wsUrl, broker.tcpUrl]) {
      const client = connect({ url, game: herald.game, player: 'p1' });
      t.after(() => client.close());
      const rec = new Recorder(client);
      const n = await rec.message(notice.campaign);
      assert.equal(n.kind, 'notice');
      assert.deepEqual(n.kind === 'notice' && n.content, { title: { en: 'Notice' }, body: { en: 'Body' }, link: 'https://example.com/n' });
      assert.equal(n.topic, `herald/${herald.game}/all/notice/${notice.campaign}`);
      const a = await rec.message(ad.campaign);
      assert.equal(a.id, ad.id);
      assert.equal(a.priority, 7);
      assert.equal(a.kind === 'ad' && a.content.displayS, 10);
      assert.deepEqual(client.messages().map((m) => m.kind), ['ad', 'notice'], 'higher priority first');
    }
  });
});
