import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEnvelope, type Envelope } from '@heraldpush/client';

/** The envelope of protocol.md section 3. */
const EXAMPLE = {
  v: 1,
  id: '0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10',
  campaign: '0193a0c4-6b2e-7d4f-8e61-0c2a9b7d1e33',
  kind: 'marquee',
  game: 'g1',
  sent_at: '2026-11-25T10:00:00Z',
  starts_at: '2026-11-25T10:05:00Z',
  expires_at: '2026-11-25T12:00:00Z',
  priority: 5,
  filter: { tag: 'level', between: [25, 39] },
  content: { text: { en: 'Maintenance at 10:00 UTC', 'zh-CN': '10:00 维护' }, repeat: 3, interval_s: 0 },
};
const TOPIC = 'herald/g1/tag/level/30-39/marquee/0193a0c4-6b2e-7d4f-8e61-0c2a9b7d1e33';

function envelope(over: Record<string, unknown>): Envelope {
  const r = parseEnvelope(JSON.stringify({ ...EXAMPLE, ...over }), TOPIC);
  assert.ok('envelope' in r, JSON.stringify(r));
  return r.envelope;
}

describe('parseEnvelope', () => {
  it('reads the envelope of protocol.md, members named the JavaScript way', () => {
    assert.deepEqual(envelope({}), {
      id: EXAMPLE.id,
      campaign: EXAMPLE.campaign,
      kind: 'marquee',
      game: 'g1',
      sentAt: new Date('2026-11-25T10:00:00Z'),
      startsAt: new Date('2026-11-25T10:05:00Z'),
      expiresAt: new Date('2026-11-25T12:00:00Z'),
      priority: 5,
      filter: { tag: 'level', between: [25, 39] },
      content: { text: EXAMPLE.content.text, repeat: 3, intervalS: 0 },
      topic: TOPIC,
    });
  });

  it('reads the content of every kind, and ignores members it does not know', () => {
    const notice = envelope({
      kind: 'notice',
      later: { x: 1 },
      content: { title: { en: 'T' }, body: { en: 'B' }, link: 'https://example.com', later: 1 },
    });
    assert.deepEqual(notice.content, { title: { en: 'T' }, body: { en: 'B' }, link: 'https://example.com' });
    const ad = envelope({
      kind: 'ad',
      starts_at: undefined,
      filter: undefined,
      content: { image_url: 'https://x/a.png', click_url: 'http://x/c', title: { en: 'A' }, placement: 'top', display_s: 5, max_impressions: 3 },
    });
    assert.equal(ad.startsAt, undefined);
    assert.equal(ad.filter, undefined);
    assert.deepEqual(ad.content, { imageUrl: 'https://x/a.png', clickUrl: 'http://x/c', title: { en: 'A' }, placement: 'top', displayS: 5, maxImpressions: 3 });
    const kick = envelope({ kind: 'kickout', content: { reason: 'ban', message: { en: 'Banned' }, reconnect_after_s: 60 } });
    assert.deepEqual(kick.content, { reason: 'ban', message: { en: 'Banned' }, reconnectAfterS: 60 });
    const marquee = envelope({ sent_at: '2026-11-25T10:00:00.123Z', content: { ...EXAMPLE.content, color: '#FF0000' } });
    assert.equal(marquee.sentAt.getTime(), Date.parse('2026-11-25T10:00:00.123Z'));
    assert.deepEqual(marquee.content, { ...envelope({}).content, color: '#FF0000' });
  });

  it('marks a test send, and only that', () => {
    assert.equal(envelope({ test: true }).test, true);
    assert.equal('test' in envelope({}), false);
    assert.equal('test' in envelope({ test: false }), false);
  });

  it('ignores, without calling it invalid, a kind of a later version', () => {
    assert.deepEqual(parseEnvelope(JSON.stringify({ ...EXAMPLE, kind: 'survey' }), TOPIC), { ignored: 'kind survey' });
  });

  it('calls invalid what is not a version-1 envelope, and never throws', () => {
    const broken: unknown[] = [
      { v: 2 },
      { v: '1' },
      { v: undefined },
      { kind: 5 },
      { id: '' },
      { id: 'a/b' },
      { campaign: undefined },
      { game: 'x'.repeat(129) },
      { sent_at: 'yesterday' },
      { sent_at: '2026-11-25' },
      { expires_at: undefined },
      { starts_at: 5 },
      { priority: 10 },
      { priority: 1.5 },
      { priority: '5' },
      { filter: 'everyone' },
      { filter: (() => { let f: unknown = { everyone: true }; for (let i = 0; i < 20; i++) f = { not: f }; return f; })() },
      { content: undefined },
      { content: [] },
      { content: { text: {}, repeat: 3, interval_s: 0 } },
      { content: { text: { en: 5 }, repeat: 3, interval_s: 0 } },
      { content: { text: { en: 'x' }, repeat: '3', interval_s: 0 } },
      { content: { text: { en: 'x' }, repeat: 3, interval_s: 0, color: 5 } },
      { kind: 'notice', content: { title: { en: 'T' } } },
      { kind: 'notice', content: { title: { en: 'T' }, body: { en: 'B' }, link: 'javascript:alert(1)' } },
      { kind: 'ad', content: { image_url: 'ftp://x', placement: 'top', display_s: 5 } },
      { kind: 'ad', content: { image_url: 'https://x', display_s: 5 } },
      { kind: 'kickout', content: {} },
      { kind: 'kickout', content: { reason: 'ban', reconnect_after_s: 'soon' } },
      { test: 'yes' },
    ];
    for (const over of broken) {
      const r = parseEnvelope(JSON.stringify({ ...EXAMPLE, ...(over as object) }), TOPIC);
      assert.ok('invalid' in r, `${JSON.stringify(over)} gave ${JSON.stringify(r)}`);
    }
    for (const text of ['', ' ', 'null', '[]', '"x"', '5', '{', '\u0000\u00ff', '{"v":1}']) {
      assert.ok('invalid' in parseEnvelope(text, TOPIC), JSON.stringify(text));
    }
  });
});
