import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Broker } from './helpers/broker.js';
import { heraldFor, marker, start, TEST_TIMEOUT_MS } from './helpers/setup.js';
import { waitFor } from './helpers/wait.js';

let broker: Broker;
before(async () => {
  broker = await Broker.start();
});
after(() => broker.stop());

const opts = { timeout: TEST_TIMEOUT_MS };
const LEVELS = { level: { bands: [[30, 39]] } };

describe('delivery against Mosquitto', { concurrency: true }, () => {
  it('shows a copy that passes its filter after a copy of the same id that failed it, once', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    await herald.descriptor(LEVELS);
    const { client, rec } = start(t, broker, herald, { tags: { level: 35 } });
    await marker(herald, rec, 'tag/level/30-39');

    const failing = await herald.send('tag/level/30-39', { filter: { server: ['s9'] } });
    await herald.send('server/s1', { id: failing.id, campaign: failing.campaign });
    await rec.message(failing.campaign);
    const m = await marker(herald, rec);

    assert.equal(rec.shownOf(failing.campaign).length, 1);
    assert.equal(client.stats().filtered, 1);
    await herald.receipt(rec.shownOf(m)[0]!.id, 'delivered');
    assert.deepEqual(herald.receiptsOf(failing.id).map((r) => r.e), ['delivered']);
  });

  it('shows a copy once when a later copy of the same id fails its filter', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    await herald.descriptor(LEVELS);
    const { client, rec } = start(t, broker, herald, { tags: { level: 35 } });
    await marker(herald, rec, 'tag/level/30-39');

    const passing = await herald.send('server/s1');
    await herald.send('tag/level/30-39', { id: passing.id, campaign: passing.campaign, filter: { tag: 'level', between: [1, 9] } });
    await marker(herald, rec);

    assert.equal(rec.shownOf(passing.campaign).length, 1);
    assert.equal(client.stats().filtered, 1);
    assert.equal(client.stats().duplicates, 0);
  });

  it('shows a send that reaches the player on several topics once, and says delivered once', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    await herald.descriptor(LEVELS);
    const { client, rec } = start(t, broker, herald, { tags: { level: 35 } });
    await marker(herald, rec, 'tag/level/30-39');

    const e = await herald.send('all', { filter: { tag: 'level', between: [30, 39] } });
    for (const where of ['server/s1', 'player/p1', 'tag/level/30-39']) await herald.send(where, { id: e.id, campaign: e.campaign });
    const m = await marker(herald, rec);

    assert.equal(rec.shownOf(e.campaign).length, 1);
    assert.equal(client.stats().duplicates, 3);
    await herald.receipt(rec.shownOf(m)[0]!.id, 'delivered');
    assert.equal(herald.receiptsOf(e.id).length, 1);
  });

  it('removes a message when its campaign gets an empty payload', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const e = await herald.send('all', { kind: 'notice' });
    const { client, rec } = start(t, broker, herald);
    await rec.message(e.campaign);
    await herald.remove(`all/notice/${e.campaign}`);

    const r = await rec.removed(e.campaign);
    assert.equal(r.reason, 'recalled');
    assert.deepEqual(client.messages('notice'), []);
    assert.equal(client.stats().removals, 1);
  });

  it('removes a message at its expires_at on its own, and drops one that arrives expired', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const { client, rec } = start(t, broker, herald);
    await marker(herald, rec);

    const stale = await herald.send('all', { expiresAt: Date.now() - 1000 });
    const expiresAt = Date.now() + 4000;
    const e = await herald.send('all', { expiresAt });
    await rec.message(e.campaign);
    const r = await rec.removed(e.campaign);

    assert.equal(r.reason, 'expired');
    assert.ok(r.at >= expiresAt, `removed ${expiresAt - r.at} ms before expires_at`);
    assert.deepEqual(rec.shownOf(stale.campaign), []);
    assert.equal(client.stats().expired, 1);
    assert.deepEqual(herald.receiptsOf(stale.id), [], 'no receipt for what arrived expired');
    assert.ok(!client.messages().some((m) => m.campaign === e.campaign));
  });

  it('says expired, not removed, of a message whose removal arrives after its expires_at', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    let ahead = 0; // a clock synchronized with the server's may jump past the timer
    const { rec } = start(t, broker, herald, { now: () => Date.now() + ahead });
    const e = await herald.send('all', { expiresAt: Date.now() + 60_000 });
    await rec.message(e.campaign);
    ahead = 120_000;
    await herald.remove(`all/marquee/${e.campaign}`);

    assert.equal((await rec.removed(e.campaign)).reason, 'expired');
  });

  it('holds a message until its starts_at, and forgets a held one that is removed', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const { rec } = start(t, broker, herald);
    await marker(herald, rec);

    const startsAt = Date.now() + 5000; // time enough for the removal to arrive first
    const held = await herald.send('all', { startsAt, kind: 'ad' });
    const recalled = await herald.send('all', { startsAt });
    await herald.receipt(held.id, 'delivered');
    await herald.receipt(recalled.id, 'delivered');
    await herald.remove(`all/marquee/${recalled.campaign}`);
    const m = await marker(herald, rec); // the removal has arrived

    const shown = await rec.message(held.campaign);
    assert.ok(shown.at >= startsAt, `shown ${startsAt - shown.at} ms before starts_at`);
    assert.ok(rec.messages.findIndex((x) => x.campaign === m) < rec.messages.indexOf(shown));
    assert.deepEqual(rec.shownOf(recalled.campaign), [], 'shown neither at its starts_at, which came with the other one');
    assert.deepEqual(rec.removes, [], 'the game never saw it, so it is not told of its removal');
    assert.deepEqual(herald.receiptsOf(held.id).map((r) => r.e), ['delivered'], 'displayed is the game\'s to say');
  });

  it('replaces the message of a campaign with a newer send, and keeps it over an older one', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const { client, rec } = start(t, broker, herald);
    const now = Date.now();
    const first = await herald.send('all', { sentAt: now - 2000 });
    await rec.message(first.campaign, first.id);

    const second = await herald.send('all', { campaign: first.campaign, sentAt: now - 1000 });
    await rec.message(first.campaign, second.id);
    assert.deepEqual(rec.removes.map((r) => [r.campaign, r.reason]), [[first.campaign, 'replaced']]);
    assert.ok(rec.removes[0]!.at <= rec.messages.find((m) => m.id === second.id)!.at);

    const older = await herald.send('server/s1', { campaign: first.campaign, sentAt: now - 3000 });
    await marker(herald, rec);
    assert.deepEqual(rec.shownOf(first.campaign).map((m) => m.id), [first.id, second.id]);
    assert.deepEqual(client.messages('marquee').filter((m) => m.campaign === first.campaign).map((m) => m.id), [second.id]);
    await herald.receipt(older.id, 'delivered');
  });

  it('counts malformed payloads as invalid and later kinds as ignored, and goes on', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const good = herald.envelope();
    const malformed: Array<string | Buffer> = [
      'not json',
      '[]',
      'null',
      Buffer.from([0xff, 0xfe, 0x00, 0x80]),
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ ...good, expires_at: undefined }),
      JSON.stringify({ ...good, content: { text: 'not localized', repeat: 1, interval_s: 0 } }),
      JSON.stringify({ ...good, filter: 'everyone' }),
    ];
    for (const [i, payload] of malformed.entries()) await herald.publish(`all/marquee/bad-${i}`, payload);
    await herald.publish('all/survey/s1', JSON.stringify({ ...good, kind: 'survey' }));
    await herald.publish('descriptor', '{"v":1,"game":');
    const { client, rec } = start(t, broker, herald);
    await marker(herald, rec);

    const s = client.stats();
    assert.equal(s.invalid, malformed.length + 1, 'the broken descriptor too');
    assert.equal(s.ignored, 1);
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.messages.length, 1, 'only the marker');
    assert.ok(client.connected);
  });

  it('hands a kick-out to its own handler after sending delivered', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const { client, rec } = start(t, broker, herald);
    await marker(herald, rec);

    const k = await herald.send('player/p1', { kind: 'kickout', expiresAt: Date.now() + 60_000 });
    const got = await waitFor(() => rec.kickouts[0], 'the kick-out');
    assert.equal(got.id, k.id);
    assert.equal(got.kind, 'kickout');
    assert.equal(got.reason, 'login_elsewhere');
    assert.deepEqual(got.message, { en: 'You logged in elsewhere' });
    assert.equal(got.reconnectAfterS, 30);
    assert.equal(client.text(got.message), 'You logged in elsewhere');
    await herald.receipt(k.id, 'delivered');
    assert.deepEqual(rec.shownOf(k.campaign), [], 'not a message to show');
    assert.equal(client.stats().received.kickout, 1);
  });

  it('sends delivered once per id, and displayed, clicked, dismissed when the game says, each once', opts, async (t) => {
    const herald = await heraldFor(t, broker);
    const { client, rec } = start(t, broker, herald, { locale: 'zh-CN' });
    const e = await herald.send('all');
    const shown = await rec.message(e.campaign);
    await herald.send('player/p1', { id: e.id, campaign: e.campaign });
    const m = await marker(herald, rec);
    await herald.receipt(rec.shownOf(m)[0]!.id, 'delivered');

    const before = Date.now();
    assert.equal(shown.kind === 'marquee' && client.text(shown.content.text), '10:00 维护');
    assert.equal(client.displayed(e.id), true);
    assert.equal(client.displayed(e.id), false, 'once');
    assert.equal(client.clicked(e.id), true);
    assert.equal(client.dismissed(e.id), true);
    assert.equal(client.dismissed(e.id), false, 'once');
    assert.equal(client.displayed('never-delivered'), false);
    await herald.receipt(e.id, 'dismissed');
    const after = Date.now();

    const receipts = herald.receiptsOf(e.id);
    assert.deepEqual(receipts.map((r) => r.e), ['delivered', 'displayed', 'clicked', 'dismissed']);
    for (const r of receipts) {
      assert.deepEqual(Object.keys(r).sort(), ['e', 'id', 'retain', 't', 'topic'], 'a receipt holds id, e and t');
      assert.equal(r.topic, `herald/${herald.game}/receipts/p1`);
      assert.equal(r.retain, false);
      assert.ok(Number.isInteger(r.t));
    }
    assert.ok(receipts[3]!.t >= before && receipts[3]!.t <= after, 'the time it was said, in Unix ms');
    assert.deepEqual(herald.receiptsOf('never-delivered'), []);
    await waitFor(() => client.stats().receiptsSent === 5, 'the broker acknowledging 5 receipts (4 for e, delivered for the marker)');
  });
});
