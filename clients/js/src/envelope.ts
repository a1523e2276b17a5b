import { withinLimits, type Filter } from './filter.js';
import { isId, isObject } from './ids.js';

/** The kinds of message this client knows. */
export type Kind = 'marquee' | 'notice' | 'ad' | 'kickout';
const KINDS: readonly string[] = ['marquee', 'notice', 'ad', 'kickout'];

/** Localized text by language tag, e.g. {"en": "...", "zh-CN": "..."}. */
export type Localized = Record<string, string>;

/** A scrolling banner, shown `repeat` times with `intervalS` seconds between. */
export interface MarqueeContent {
  text: Localized;
  repeat: number;
  intervalS: number;
  /** #RRGGBB */
  color?: string;
}

/** A notice with an optional http(s) link. */
export interface NoticeContent {
  title: Localized;
  body: Localized;
  link?: string;
}

/** A floating window shown for `displayS` seconds; a click opens `clickUrl`. */
export interface AdContent {
  imageUrl: string;
  clickUrl?: string;
  title?: Localized;
  /** center, top, bottom, left or right */
  placement: string;
  displayS: number;
  maxImpressions?: number;
}

/** Log the account out, show `message`, do not reconnect before `reconnectAfterS`. */
export interface KickoutContent {
  /** ban, login_elsewhere, maintenance, server_shutdown or other */
  reason: string;
  message?: Localized;
  reconnectAfterS?: number;
}

interface Common {
  /** The send's id: the key of de-duplication and of receipts. */
  id: string;
  campaign: string;
  game: string;
  sentAt: Date;
  startsAt?: Date;
  expiresAt: Date;
  /** 0-9, higher first. */
  priority: number;
  filter?: Filter;
  /**
   * Set on a test send: an operator previewing the campaign on this player's
   * device (POST .../campaigns/{id}/test). Show it as usual; the game may mark it.
   */
  test?: true;
  /** The topic this copy arrived on. */
  topic: string;
}

/** A message the game shows: a marquee, a notice or an ad. */
export type Message = Common &
  (
    | { kind: 'marquee'; content: MarqueeContent }
    | { kind: 'notice'; content: NoticeContent }
    | { kind: 'ad'; content: AdContent }
  );

/** An envelope of protocol.md section 3, its members named the JavaScript way. */
export type Envelope = Message | (Common & { kind: 'kickout'; content: KickoutContent });

/**
 * What parseEnvelope found: an envelope, something to drop and count as invalid
 * (not a version-1 envelope), or something to ignore quietly (a kind of a later
 * version, which protocol.md says is not an error).
 */
export type Parsed = { envelope: Envelope } | { invalid: string } | { ignored: string };

/**
 * parseEnvelope reads a non-empty payload that arrived on topic. Members it does
 * not know are ignored. It never throws.
 */
export function parseEnvelope(text: string, topic: string): Parsed {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    return { invalid: 'not JSON' };
  }
  if (!isObject(e)) return { invalid: 'not a JSON object' };
  if (e.v !== 1) return { invalid: `version ${JSON.stringify(e.v)}` };
  if (typeof e.kind !== 'string') return { invalid: 'kind' };
  if (!KINDS.includes(e.kind)) return { ignored: `kind ${e.kind}` };
  for (const m of ['id', 'campaign', 'game'] as const) {
    if (!isId(e[m])) return { invalid: m };
  }
  const sentAt = time(e.sent_at);
  const expiresAt = time(e.expires_at);
  const startsAt = e.starts_at === undefined ? undefined : time(e.starts_at);
  if (sentAt === undefined) return { invalid: 'sent_at' };
  if (expiresAt === undefined) return { invalid: 'expires_at' };
  if (startsAt === undefined && e.starts_at !== undefined) return { invalid: 'starts_at' };
  if (!Number.isInteger(e.priority) || (e.priority as number) < 0 || (e.priority as number) > 9) {
    return { invalid: 'priority' };
  }
  if (e.filter !== undefined && (!isObject(e.filter) || !withinLimits(e.filter))) return { invalid: 'filter' };
  if (!isObject(e.content)) return { invalid: 'content' };
  if (e.test !== undefined && typeof e.test !== 'boolean') return { invalid: 'test' };
  const common: Common = {
    id: e.id as string,
    campaign: e.campaign as string,
    game: e.game as string,
    sentAt,
    expiresAt,
    priority: e.priority as number,
    topic,
  };
  if (startsAt !== undefined) common.startsAt = startsAt;
  if (e.filter !== undefined) common.filter = e.filter as Filter;
  if (e.test === true) common.test = true;
  const c = e.content;
  switch (e.kind as Kind) {
    case 'marquee': {
      if (!localized(c.text) || !Number.isInteger(c.repeat) || !Number.isInteger(c.interval_s)) return { invalid: 'content' };
      if (!optional(c.color, (v) => typeof v === 'string')) return { invalid: 'content.color' };
      const content: MarqueeContent = { text: c.text, repeat: c.repeat as number, intervalS: c.interval_s as number };
      if (c.color !== undefined) content.color = c.color as string;
      return { envelope: { ...common, kind: 'marquee', content } };
    }
    case 'notice': {
      if (!localized(c.title) || !localized(c.body)) return { invalid: 'content' };
      const content: NoticeContent = { title: c.title, body: c.body };
      if (!optional(c.link, url)) return { invalid: 'content.link' };
      if (c.link !== undefined) content.link = c.link as string;
      return { envelope: { ...common, kind: 'notice', content } };
    }
    case 'ad': {
      if (!url(c.image_url) || typeof c.placement !== 'string' || !Number.isInteger(c.display_s)) return { invalid: 'content' };
      if (!optional(c.click_url, url) || !optional(c.title, localized) || !optional(c.max_impressions, Number.isInteger)) {
        return { invalid: 'content' };
      }
      const content: AdContent = { imageUrl: c.image_url, placement: c.placement, displayS: c.display_s as number };
      if (c.click_url !== undefined) content.clickUrl = c.click_url as string;
      if (c.title !== undefined) content.title = c.title as Localized;
      if (c.max_impressions !== undefined) content.maxImpressions = c.max_impressions as number;
      return { envelope: { ...common, kind: 'ad', content } };
    }
    case 'kickout': {
      if (typeof c.reason !== 'string' || !optional(c.message, localized) || !optional(c.reconnect_after_s, Number.isInteger)) {
        return { invalid: 'content' };
      }
      const content: KickoutContent = { reason: c.reason };
      if (c.message !== undefined) content.message = c.message as Localized;
      if (c.reconnect_after_s !== undefined) content.reconnectAfterS = c.reconnect_after_s as number;
      return { envelope: { ...common, kind: 'kickout', content } };
    }
  }
}

/** time reads an RFC 3339 time; undefined if it is not one. */
function time(v: unknown): Date | undefined {
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function localized(v: unknown): v is Localized {
  return isObject(v) && Object.keys(v).length > 0 && Object.values(v).every((t) => typeof t === 'string');
}

function url(v: unknown): v is string {
  return typeof v === 'string' && /^https?:\/\//.test(v);
}

function optional(v: unknown, ok: (v: unknown) => boolean): boolean {
  return v === undefined || ok(v);
}
