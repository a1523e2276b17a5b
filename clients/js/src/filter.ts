import { isObject, own } from './ids.js';

/**
 * A filter (protocol.md section 4): the rule an envelope carries when its
 * audience could not be expressed exactly as topics. One form per object.
 */
export type Filter =
  | { everyone: true }
  | { server: string[] }
  | { tag: string; in: string[] }
  | { tag: string; between: [number, number] }
  | { players: string[] }
  | { and: Filter[] }
  | { or: Filter[] }
  | { not: Filter };

/**
 * What a client knows about itself: its player id, its server (if the game has
 * shards) and a value per tag it carries: a string for an enumerated tag, a
 * number for a banded one.
 */
export interface Attributes {
  player: string;
  server?: string | undefined;
  tags?: Record<string, string | number> | undefined;
}

/** A filter holds at most this many nodes... */
export const MAX_FILTER_NODES = 256;
/** ...and this many levels (protocol.md section 4). */
export const MAX_FILTER_DEPTH = 16;

/**
 * matches evaluates a filter against the client's own attributes. An atom about
 * something the client does not carry (no server, no value for the tag, a value
 * of the other type) is false, and so is a form it does not know; a filter over
 * the size limits is false as a whole. It never throws, whatever filter is.
 */
export function matches(filter: unknown, attrs: Attributes): boolean {
  return withinLimits(filter) && evaluate(filter, attrs);
}

/**
 * withinLimits tells whether a filter holds at most MAX_FILTER_NODES nodes and
 * MAX_FILTER_DEPTH levels. It stops counting as soon as either is exceeded.
 */
export function withinLimits(filter: unknown): boolean {
  let nodes = 0;
  const walk = (f: unknown, depth: number): boolean => {
    if (depth > MAX_FILTER_DEPTH || ++nodes > MAX_FILTER_NODES) return false;
    if (!isObject(f)) return true;
    const not = own(f, 'not');
    if (not !== undefined) return walk(not, depth + 1);
    const children = own(f, 'and') ?? own(f, 'or');
    return !Array.isArray(children) || children.every((c) => walk(c, depth + 1));
  };
  return walk(filter, 1);
}

function evaluate(f: unknown, a: Attributes): boolean {
  if (!isObject(f)) return false;
  const tags = a.tags;
  if (form(f, 'everyone')) return f.everyone === true;
  if (form(f, 'server')) return a.server !== undefined && includes(f.server, a.server);
  if (form(f, 'players')) return includes(f.players, a.player);
  if (form(f, 'tag', 'in')) {
    const v = typeof f.tag === 'string' ? own(tags, f.tag) : undefined;
    return typeof v === 'string' && includes(f.in, v);
  }
  if (form(f, 'tag', 'between')) {
    const v = typeof f.tag === 'string' ? own(tags, f.tag) : undefined;
    const range = f.between;
    return (
      typeof v === 'number' &&
      Array.isArray(range) &&
      range.length === 2 &&
      typeof range[0] === 'number' &&
      typeof range[1] === 'number' &&
      range[0] <= v &&
      v <= range[1]
    );
  }
  if (form(f, 'and')) return Array.isArray(f.and) && f.and.every((c) => evaluate(c, a));
  if (form(f, 'or')) return Array.isArray(f.or) && f.or.some((c) => evaluate(c, a));
  if (form(f, 'not')) return !evaluate(f.not, a);
  return false; // a form this client does not know
}

/** form tells whether f has exactly these members: one form per object. */
function form(f: Record<string, unknown>, ...members: string[]): boolean {
  const keys = Object.keys(f);
  return keys.length === members.length && members.every((m) => keys.includes(m));
}

function includes(list: unknown, v: string): boolean {
  return Array.isArray(list) && list.includes(v);
}
