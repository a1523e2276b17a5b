import type { Attributes } from './filter.js';
import { isId, isObject, own } from './ids.js';

/** How a game declares one tag: the values of an enumerated tag, or the bands of a numeric one. */
export type TagSpec = { values: string[] } | { bands: [number, number][] };

/**
 * A game's descriptor (protocol.md section 2), retained on
 * {prefix}/{game}/descriptor: what a client needs to compute its subscriptions.
 */
export interface Descriptor {
  v: 1;
  game: string;
  prefix: string;
  defaultLocale: string;
  /** The tags this client can use; tags of a form it does not know are left out. */
  tags: Record<string, TagSpec>;
  updatedAt: string;
}

/**
 * parseDescriptor reads a descriptor's JSON text. It returns undefined for
 * anything that is not a version-1 descriptor; a tag declared in a form this
 * client does not know (a later version's) is left out, not an error.
 */
export function parseDescriptor(text: string): Descriptor | undefined {
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(d) || d.v !== 1 || !isId(d.game) || typeof d.prefix !== 'string' || d.prefix === '') return undefined;
  if (typeof d.default_locale !== 'string' || !isObject(d.tags) || typeof d.updated_at !== 'string') return undefined;
  const tags: Record<string, TagSpec> = {};
  for (const [name, spec] of Object.entries(d.tags)) {
    const parsed = parseTagSpec(spec);
    if (isId(name) && parsed !== undefined) tags[name] = parsed;
  }
  return { v: 1, game: d.game, prefix: d.prefix, defaultLocale: d.default_locale, tags, updatedAt: d.updated_at };
}

function parseTagSpec(spec: unknown): TagSpec | undefined {
  if (!isObject(spec)) return undefined;
  const values = own(spec, 'values');
  if (Array.isArray(values)) return values.every(isId) ? { values } : undefined;
  const bands = own(spec, 'bands');
  if (Array.isArray(bands)) return bands.every(isBand) ? { bands } : undefined;
  return undefined;
}

function isBand(b: unknown): b is [number, number] {
  return Array.isArray(b) && b.length === 2 && Number.isInteger(b[0]) && Number.isInteger(b[1]);
}

/** descriptorTopic is where a game's descriptor is retained. */
export function descriptorTopic(prefix: string, game: string): string {
  return `${prefix}/${game}/descriptor`;
}

/**
 * subscriptions computes every topic filter a client subscribes to
 * (protocol.md section 2): the descriptor, everyone's messages, its own, its
 * server's, and one per tag it carries that the descriptor lets it reach: an
 * enumerated tag whose value the descriptor lists, a banded tag whose number
 * lies in a band (spelled lo-hi). Without tags (no descriptor yet) it gives the
 * topics a client subscribes to at once.
 */
export function subscriptions(
  descriptor: Pick<Descriptor, 'prefix' | 'game'> & { tags?: Record<string, TagSpec> },
  attrs: Attributes,
): string[] {
  const base = `${descriptor.prefix}/${descriptor.game}`;
  const topics = [descriptorTopic(descriptor.prefix, descriptor.game), `${base}/all/#`, `${base}/player/${attrs.player}/#`];
  if (attrs.server !== undefined) topics.push(`${base}/server/${attrs.server}/#`);
  for (const [tag, spec] of Object.entries(descriptor.tags ?? {})) {
    const value = own(attrs.tags, tag);
    const level = tagLevel(spec, value);
    if (level !== undefined) topics.push(`${base}/tag/${tag}/${level}/#`);
  }
  return topics;
}

/** tagLevel is the topic level of a tag's value: the value itself, or its band. */
function tagLevel(spec: TagSpec, value: unknown): string | undefined {
  if ('values' in spec) return typeof value === 'string' && spec.values.includes(value) ? value : undefined;
  if (typeof value !== 'number') return undefined;
  const band = spec.bands.find(([lo, hi]) => lo <= value && value <= hi);
  return band && `${band[0]}-${band[1]}`;
}
