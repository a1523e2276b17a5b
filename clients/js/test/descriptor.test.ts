import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDescriptor, subscriptions } from '@heraldpush/client';

/** The descriptor of protocol.md section 2. */
const EXAMPLE = `{"v":1,"game":"g1","prefix":"herald","default_locale":"en",
 "tags":{"region":{"values":["eu","na","asia"]},
         "level":{"bands":[[1,9],[10,19],[20,29],[30,39]]}},
 "updated_at":"2026-11-27T10:00:00Z"}`;

describe('parseDescriptor', () => {
  it('reads the descriptor of protocol.md', () => {
    assert.deepEqual(parseDescriptor(EXAMPLE), {
      v: 1,
      game: 'g1',
      prefix: 'herald',
      defaultLocale: 'en',
      tags: {
        region: { values: ['eu', 'na', 'asia'] },
        level: { bands: [[1, 9], [10, 19], [20, 29], [30, 39]] },
      },
      updatedAt: '2026-11-27T10:00:00Z',
    });
  });

  it('leaves out tags of a form it does not know or that are malformed, not the descriptor', () => {
    const d = parseDescriptor(
      JSON.stringify({
        v: 1,
        game: 'g1',
        prefix: 'herald',
        default_locale: 'en',
        updated_at: 'x',
        future: true,
        tags: {
          region: { values: ['eu'] },
          geo: { polygons: [[0, 0]] },
          bad_values: { values: ['eu/west'] },
          bad_bands: { bands: [[1, 'x']] },
          'bad/name': { values: ['eu'] },
        },
      }),
    );
    assert.deepEqual(d?.tags, { region: { values: ['eu'] } });
  });

  it('refuses what is not a version-1 descriptor', () => {
    const ok = JSON.parse(EXAMPLE) as Record<string, unknown>;
    const broken = [
      'not json',
      '[]',
      'null',
      JSON.stringify({ ...ok, v: 2 }),
      JSON.stringify({ ...ok, game: 'g/1' }),
      JSON.stringify({ ...ok, prefix: '' }),
      JSON.stringify({ ...ok, tags: [] }),
      JSON.stringify({ ...ok, default_locale: undefined }),
      JSON.stringify({ ...ok, updated_at: 5 }),
    ];
    for (const text of broken) assert.equal(parseDescriptor(text), undefined, text);
  });
});

describe('subscriptions', () => {
  const d = parseDescriptor(EXAMPLE)!;

  it('subscribes to the descriptor, everyone, the player, its server, its tag value and its band', () => {
    assert.deepEqual(subscriptions(d, { player: 'p1', server: 's1', tags: { region: 'eu', level: 35 } }), [
      'herald/g1/descriptor',
      'herald/g1/all/#',
      'herald/g1/player/p1/#',
      'herald/g1/server/s1/#',
      'herald/g1/tag/region/eu/#',
      'herald/g1/tag/level/30-39/#',
    ]);
  });

  it('gives nothing for a value the descriptor does not list, a number in no band, or an undeclared tag', () => {
    const tags = { region: 'moon', level: 40, vip: 'gold' };
    assert.deepEqual(subscriptions(d, { player: 'p1', tags }), [
      'herald/g1/descriptor',
      'herald/g1/all/#',
      'herald/g1/player/p1/#',
    ]);
  });

  it('finds the band at its bounds and never mixes enumerated and banded values', () => {
    const topics = (tags: Record<string, string | number>) => subscriptions(d, { player: 'p', tags }).slice(3);
    assert.deepEqual(topics({ level: 1 }), ['herald/g1/tag/level/1-9/#']);
    assert.deepEqual(topics({ level: 9 }), ['herald/g1/tag/level/1-9/#']);
    assert.deepEqual(topics({ level: 10 }), ['herald/g1/tag/level/10-19/#']);
    assert.deepEqual(topics({ level: 39 }), ['herald/g1/tag/level/30-39/#']);
    assert.deepEqual(topics({ level: 0 }), []);
    assert.deepEqual(topics({ level: '35' }), [], 'a string for a banded tag');
    assert.deepEqual(topics({ region: 1 }), [], 'a number for an enumerated tag');
  });

  it('gives the topics to subscribe to at once before any descriptor', () => {
    assert.deepEqual(subscriptions({ prefix: 'acme', game: 'g2' }, { player: 'p1', server: 's1', tags: { level: 3 } }), [
      'acme/g2/descriptor',
      'acme/g2/all/#',
      'acme/g2/player/p1/#',
      'acme/g2/server/s1/#',
    ]);
  });
});
