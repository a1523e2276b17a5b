import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matches, MAX_FILTER_DEPTH, MAX_FILTER_NODES, type Attributes } from '@heraldpush/client';

const p1: Attributes = { player: 'p1', server: 's1', tags: { region: 'eu', level: 35 } };
const bare: Attributes = { player: 'p1' };

describe('matches', () => {
  it('evaluates each form of protocol.md section 4', () => {
    const cases: Array<[unknown, boolean]> = [
      [{ everyone: true }, true],
      [{ server: ['s1', 's2'] }, true],
      [{ server: ['s2'] }, false],
      [{ tag: 'region', in: ['eu', 'na'] }, true],
      [{ tag: 'region', in: ['na'] }, false],
      [{ tag: 'level', between: [30, 39] }, true],
      [{ tag: 'level', between: [35, 35] }, true],
      [{ tag: 'level', between: [36, 39] }, false],
      [{ tag: 'level', between: [25, 34] }, false],
      [{ players: ['p2', 'p1'] }, true],
      [{ players: ['p2'] }, false],
      [{ and: [{ server: ['s1'] }, { tag: 'region', in: ['eu'] }] }, true],
      [{ and: [{ server: ['s1'] }, { tag: 'region', in: ['na'] }] }, false],
      [{ or: [{ server: ['s9'] }, { players: ['p1'] }] }, true],
      [{ or: [{ server: ['s9'] }, { players: ['p9'] }] }, false],
      [{ not: { server: ['s1'] } }, false],
      [{ not: { server: ['s9'] } }, true],
      [{ and: [] }, true],
      [{ or: [] }, false],
    ];
    for (const [f, want] of cases) assert.equal(matches(f, p1), want, JSON.stringify(f));
  });

  it('makes an atom about something the client does not carry false, and its not true', () => {
    for (const f of [{ server: ['s1'] }, { tag: 'region', in: ['eu'] }, { tag: 'level', between: [0, 100] }]) {
      assert.equal(matches(f, bare), false, JSON.stringify(f));
      assert.equal(matches({ not: f }, bare), true, `not ${JSON.stringify(f)}`);
    }
    // a value of the other type is not carried either
    assert.equal(matches({ tag: 'level', in: ['35'] }, p1), false);
    assert.equal(matches({ tag: 'region', between: [0, 100] }, { player: 'p1', tags: { region: 'eu' } }), false);
  });

  it('treats a form it does not know as a false atom', () => {
    for (const f of [
      { country: ['fr'] },
      { everyone: true, server: ['s1'] }, // two forms in one object
      { tag: 'level', between: [30, 39], step: 2 },
      { tag: 'level', between: [30] },
      { everyone: false },
      { and: 'x' },
      {},
    ]) {
      assert.equal(matches(f, p1), false, JSON.stringify(f));
    }
    assert.equal(matches({ not: { country: ['fr'] } }, p1), true);
  });

  it('never throws, whatever the filter is', () => {
    for (const f of [null, undefined, 0, 'everyone', [], [{ everyone: true }], { server: 's1' }, { players: null }]) {
      assert.equal(matches(f, p1), false, JSON.stringify(f));
    }
    assert.equal(matches({ tag: 'constructor', in: ['x'] }, p1), false); // nothing inherited is a tag
    assert.equal(matches({ not: null }, p1), true, 'not of a malformed atom, like not of an unknown form');
  });

  it('makes a filter over the size limits false as a whole', () => {
    let deep: unknown = { everyone: true };
    for (let i = 1; i < MAX_FILTER_DEPTH; i++) deep = { and: [deep] };
    assert.equal(matches(deep, p1), true, 'exactly at the depth limit');
    assert.equal(matches({ and: [deep] }, p1), false, 'one level deeper');
    assert.equal(matches({ not: { not: deep } }, p1), false, 'not over the limit is false too');

    const wide = (n: number) => ({ or: Array.from({ length: n - 1 }, () => ({ players: ['p1'] })) });
    assert.equal(matches(wide(MAX_FILTER_NODES), p1), true, 'exactly at the node limit');
    assert.equal(matches(wide(MAX_FILTER_NODES + 1), p1), false, 'one node more');

    let veryDeep: unknown = { everyone: true };
    for (let i = 0; i < 100_000; i++) veryDeep = { not: veryDeep };
    assert.equal(matches(veryDeep, p1), false, 'no stack overflow');
  });
});
