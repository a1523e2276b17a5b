import type { Envelope, Kind, KickoutContent, Message } from './envelope.js';
import { parseEnvelope } from './envelope.js';
import { matches, type Attributes } from './filter.js';

/** Why a message the game was shown went away. */
export type RemoveReason = 'recalled' | 'expired' | 'replaced';

/** A kick-out: log the account out, show message, do not reconnect before reconnectAfterS. */
export type Kickout = Omit<Extract<Envelope, { kind: 'kickout' }>, 'content'> & KickoutContent;

/** Counters of what arrived and what became of it. */
export interface Counts {
  /** Messages accepted (past expiry, filter and de-duplication), per kind. */
  received: Record<Kind, number>;
  /** Removals: empty payloads that arrived, and messages a reconnect found recalled. */
  removals: number;
  /** Copies dropped because their filter is false for this client. */
  filtered: number;
  /** Copies of an id already accepted. */
  duplicates: number;
  /** Messages that had expired when they arrived. */
  expired: number;
  /** Payloads that are not a version-1 envelope (or descriptor). */
  invalid: number;
  /** Envelopes of a kind this client does not know (a later version's). */
  ignored: number;
}

/** What the inbox tells its owner. */
export interface InboxOutput {
  /** Send the delivered receipt of id (called once per id). */
  delivered(id: string): void;
  show(m: Message): void;
  remove(campaign: string, reason: RemoveReason): void;
  kickout(k: Kickout): void;
}

interface Held {
  message: Message;
  /** Whether the game has been given it (starts_at has come). */
  shown: boolean;
  /** Held across a reconnect, and no copy of its campaign has arrived since (see reconnected). */
  unconfirmed: boolean;
}

/** The longest a timer can wait in browsers and Node (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Inbox does what protocol.md sections 5 and 6 ask of each message, apart from
 * the connection: removal by empty payload, parsing, expiry, filter,
 * de-duplication, one message per campaign, the delivered receipt, holding a
 * message until its starts_at and removing it at its expires_at.
 */
export class Inbox {
  readonly counts: Counts = {
    received: { marquee: 0, notice: 0, ad: 0, kickout: 0 },
    removals: 0,
    filtered: 0,
    duplicates: 0,
    expired: 0,
    invalid: 0,
    ignored: 0,
  };
  /** Ids of the copies that passed their filter: the de-duplication memory. */
  private readonly seen = new Set<string>();
  /** The one message held per campaign, shown or waiting for its starts_at. */
  private readonly held = new Map<string, Held>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Removes what a reconnect left unconfirmed, once the grace has passed. */
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly attrs: Attributes,
    private readonly now: () => number,
    private readonly out: InboxOutput,
  ) {}

  /** receive handles one payload (decoded as text) that arrived on topic. */
  receive(topic: string, payload: string): void {
    if (this.closed) return;
    if (payload === '') {
      this.counts.removals++;
      // Herald clears at expiry too: past its expires_at, the message expired.
      const campaign = topic.slice(topic.lastIndexOf('/') + 1);
      const expires = this.held.get(campaign)?.message.expiresAt.getTime() ?? Infinity;
      this.drop(campaign, expires <= this.now() ? 'expired' : 'recalled');
      return;
    }
    const parsed = parseEnvelope(payload, topic);
    if ('invalid' in parsed) {
      this.counts.invalid++;
      return;
    }
    if ('ignored' in parsed) {
      this.counts.ignored++;
      return;
    }
    const e = parsed.envelope;
    if (e.expiresAt.getTime() <= this.now()) {
      this.counts.expired++;
      return;
    }
    if (e.filter !== undefined && !matches(e.filter, this.attrs)) {
      this.counts.filtered++; // and its id is not remembered: another copy may pass
      return;
    }
    const confirmed = this.held.get(e.campaign); // a copy that passed: its campaign is still live
    if (confirmed !== undefined) confirmed.unconfirmed = false;
    if (this.seen.has(e.id)) {
      this.counts.duplicates++;
      return;
    }
    this.seen.add(e.id);
    this.counts.received[e.kind]++;
    if (e.kind === 'kickout') {
      this.out.delivered(e.id);
      const { content, ...rest } = e;
      this.out.kickout({ ...rest, ...content });
      return;
    }
    const current = this.held.get(e.campaign);
    if (current !== undefined && current.message.sentAt.getTime() >= e.sentAt.getTime()) {
      this.out.delivered(e.id); // it arrived, but a newer send of its campaign is held
      return;
    }
    if (current !== undefined) this.drop(e.campaign, 'replaced');
    this.held.set(e.campaign, { message: e, shown: false, unconfirmed: false });
    this.out.delivered(e.id);
    this.tick();
  }

  /** accepted tells whether a copy of id passed its filter (so that receipts about it make sense). */
  accepted(id: string): boolean {
    return this.seen.has(id);
  }

  /** shown lists the messages the game has been given and that are still live, highest priority first. */
  shown(): Message[] {
    return [...this.held.values()].filter((h) => h.shown).map((h) => h.message).sort(byPriority);
  }

  /**
   * reconnected tells the inbox that the connection was made again and is
   * about to subscribe. A campaign recalled while the client was offline sends
   * nothing (Herald cleared its retained copies; the empty payload went to the
   * clients online then), so every message held becomes unconfirmed until a
   * copy of its campaign that passes its filter arrives (protocol.md section
   * 5, "After a reconnect"). A sweep that was due is called off.
   */
  reconnected(): void {
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const h of this.held.values()) h.unconfirmed = true;
  }

  /**
   * subscribed tells the inbox that the broker acknowledged the subscriptions
   * made after reconnected: graceMs later, the messages still unconfirmed are
   * removed ('recalled') and their ids forgotten, so that a copy arriving later
   * still (a broker slower than the grace) shows the message again.
   */
  subscribed(graceMs: number): void {
    if (this.closed || ![...this.held.values()].some((h) => h.unconfirmed)) return;
    clearTimeout(this.sweepTimer);
    this.sweepTimer = setTimeout(() => this.sweep(), graceMs);
  }

  /** close stops the timers; nothing is emitted after it. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.sweepTimer);
  }

  private sweep(): void {
    this.sweepTimer = undefined;
    for (const [campaign, h] of this.held) {
      if (!h.unconfirmed) continue;
      this.seen.delete(h.message.id);
      this.counts.removals++;
      this.drop(campaign, 'recalled');
    }
  }

  /** drop forgets a campaign's message, telling the game if it was shown. */
  private drop(campaign: string, reason: RemoveReason): void {
    const h = this.held.get(campaign);
    if (h === undefined) return;
    this.held.delete(campaign);
    if (h.shown) this.out.remove(campaign, reason);
  }

  /**
   * tick removes what has expired, shows what has started, and sets the timer
   * for the next such moment. The timer may fire early (waits are capped) or
   * late; each tick reads the clock again.
   */
  private tick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    const now = this.now();
    let next = Infinity;
    const starting: Message[] = [];
    for (const [campaign, h] of this.held) {
      const m = h.message;
      if (m.expiresAt.getTime() <= now) {
        this.drop(campaign, 'expired');
        continue;
      }
      if (!h.shown && (m.startsAt === undefined || m.startsAt.getTime() <= now)) {
        h.shown = true;
        starting.push(m);
      }
      next = Math.min(next, m.expiresAt.getTime(), h.shown ? Infinity : (m.startsAt as Date).getTime());
    }
    if (next !== Infinity) this.timer = setTimeout(() => this.tick(), Math.min(MAX_TIMER_MS, Math.max(0, next - now)));
    for (const m of starting.sort(byPriority)) {
      if (!this.closed) this.out.show(m);
    }
  }
}

/** byPriority orders messages that compete for a place: higher priority first, then later sent_at. */
export function byPriority(a: Message, b: Message): number {
  return b.priority - a.priority || b.sentAt.getTime() - a.sentAt.getTime();
}
