import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { backoffDelay, DEFAULT_BACKOFF, type Backoff } from './backoff.js';
import { descriptorTopic, parseDescriptor, subscriptions, type Descriptor } from './descriptor.js';
import { Emitter } from './emitter.js';
import type { Kind, Localized, Message } from './envelope.js';
import type { Attributes } from './filter.js';
import { isId } from './ids.js';
import { Inbox, type Counts, type Kickout, type RemoveReason } from './inbox.js';
import { pickText } from './locale.js';

/** What connect needs to know. */
export interface ConnectOptions {
  /** The broker: ws:// or wss:// (browsers, Cocos Creator), or mqtt:// and mqtts:// under Node. */
  url: string;
  game: string;
  player: string;
  /** The game server (shard) the player is on, if the game has shards. */
  server?: string;
  /** A value per tag the player carries: a string for an enumerated tag, a number for a banded one. */
  tags?: Record<string, string | number>;
  /** The MQTT user name; the player id unless told. */
  username?: string;
  /** The MQTT password: whatever the game's login gives. */
  password?: string;
  /** Herald's topic prefix; "herald" unless the operator changed it. */
  prefix?: string;
  /** The player's locale, e.g. "zh-CN"; the browser's language unless told. */
  locale?: string;
  /** The MQTT client id; {player}-{random} unless told. It must be unique per connection. */
  clientId?: string;
  /** Reconnection backoff: minMs (1000) doubling to maxMs (60000), each wait times a random 0.5-1.5. */
  reconnect?: Partial<Backoff>;
  /** The clock (Unix ms): Date.now unless told, e.g. a server-synchronized one. */
  now?: () => number;
  /**
   * After a reconnect, a message held whose retained copy has not come back
   * this long (ms) after the broker acknowledged the subscriptions was recalled
   * while the client was offline, and is removed ('recalled'). 5000 unless told.
   */
  recallGraceMs?: number;
}

/** The events a Client emits, and their listeners. */
export interface ClientEvents {
  /** A message to show, from its starts_at on. */
  message: (m: Message) => void;
  /** A message given to 'message' is gone: recalled, expired, or replaced by a newer send of its campaign. */
  remove: (campaign: string, reason: RemoveReason) => void;
  /** The player is kicked out (its delivered receipt is already on its way). */
  kickout: (k: Kickout) => void;
  /** The game's descriptor arrived or changed; subscriptions follow it. */
  descriptor: (d: Descriptor) => void;
  /** Connected (again) to the broker; subscriptions are being made. */
  connect: () => void;
  /** The connection is lost, or the first attempt failed. */
  offline: () => void;
  /** The next attempt to connect starts in delayMs; attempt counts the failed ones since the last connection. */
  reconnecting: (delayMs: number, attempt: number) => void;
  /** Something went wrong that the client works around on its own (a refused connection, a refused subscription). */
  error: (e: Error) => void;
}

/** What a receipt reports (protocol.md section 7). */
export type ReceiptEvent = 'delivered' | 'displayed' | 'clicked' | 'dismissed';

/** Counters of what arrived, what became of it, and the receipts the broker acknowledged. */
export type Stats = Counts & { receiptsSent: number };

/** How long close waits for the broker before it drops the connection. */
const CLOSE_WAIT_MS = 5000;

/** The default of ConnectOptions.recallGraceMs. */
const RECALL_GRACE_MS = 5000;

/**
 * connect starts a Herald client: it connects to the broker in the background,
 * subscribes, and emits 'message', 'remove' and 'kickout' as protocol.md says.
 * It throws a TypeError only for options that can never work (an id outside
 * the id alphabet, a tag value that is neither a string nor a number).
 */
export function connect(options: ConnectOptions): Client {
  return new Client(options);
}

/** Client is one player's connection to Herald's messages. Create it with connect. */
export class Client extends Emitter<ClientEvents> {
  private readonly mqtt: MqttClient;
  private readonly inbox: Inbox;
  private readonly attrs: Attributes;
  private readonly prefix: string;
  private readonly game: string;
  private readonly locale: string | undefined;
  private readonly now: () => number;
  private readonly backoff: Backoff;
  private readonly recallGraceMs: number;
  private readonly receiptsTopic: string;
  private readonly descriptorTopic: string;
  /** Every topic filter the client wants, whether or not it is connected now. */
  private topics: Set<string>;
  private descriptor: Descriptor | undefined;
  /** Receipts sent (or on their way) per accepted id: each event at most once. */
  private readonly receipts = new Map<string, Set<ReceiptEvent>>();
  private receiptsSent = 0;
  /** Failed connection attempts since the last connection. */
  private attempt = 0;
  private closing: Promise<void> | undefined;

  constructor(o: ConnectOptions) {
    super();
    checkOptions(o);
    this.prefix = o.prefix ?? 'herald';
    this.game = o.game;
    this.attrs = { player: o.player, server: o.server, tags: { ...o.tags } }; // a copy: they are fixed for the client's life
    this.locale = o.locale ?? (globalThis as { navigator?: { language?: string } }).navigator?.language;
    this.now = o.now ?? Date.now;
    this.backoff = { ...DEFAULT_BACKOFF, ...o.reconnect };
    this.recallGraceMs = o.recallGraceMs ?? RECALL_GRACE_MS;
    this.receiptsTopic = `${this.prefix}/${this.game}/receipts/${o.player}`;
    this.descriptorTopic = descriptorTopic(this.prefix, this.game);
    this.topics = new Set(subscriptions({ prefix: this.prefix, game: this.game }, this.attrs));
    this.inbox = new Inbox(this.attrs, this.now, {
      delivered: (id) => this.receipt(id, 'delivered'),
      show: (m) => this.emit('message', m),
      remove: (campaign, reason) => this.emit('remove', campaign, reason),
      kickout: (k) => this.emit('kickout', k),
    });

    const opts: IClientOptions = {
      clientId: o.clientId ?? `${o.player}-${Math.random().toString(16).slice(2, 10)}`,
      username: o.username ?? o.player,
      protocolVersion: 4,
      clean: true, // offline delivery is by retained messages, never by queued sessions
      resubscribe: false, // the client subscribes to its whole set itself at each connect
      reconnectPeriod: backoffDelay(0, this.backoff),
      reconnectOnConnackError: true, // a refused login may be a passing outage of the game's auth
    };
    if (o.password !== undefined) opts.password = o.password;
    this.mqtt = mqtt.connect(o.url, opts);
    this.mqtt.on('connect', () => this.onConnect());
    this.mqtt.on('reconnect', () => this.onAttempt());
    this.mqtt.on('close', () => this.onClose());
    this.mqtt.on('offline', () => this.emit('offline'));
    this.mqtt.on('error', (e) => this.emit('error', e));
    this.mqtt.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  /** connected tells whether the client is connected to the broker now. */
  get connected(): boolean {
    return this.mqtt.connected;
  }

  /** displayed reports that the message id was really shown. It returns whether a receipt was sent. */
  displayed(id: string): boolean {
    return this.receipt(id, 'displayed');
  }

  /** clicked reports that the player clicked the message id (an ad's window, a notice's link). */
  clicked(id: string): boolean {
    return this.receipt(id, 'clicked');
  }

  /** dismissed reports that the player closed the message id. */
  dismissed(id: string): boolean {
    return this.receipt(id, 'dismissed');
  }

  /**
   * text picks what to show from localized text: the player's locale, else its
   * language alone, else the game's default locale (from the descriptor).
   */
  text(localized: Localized | undefined): string {
    return pickText(localized, this.locale, this.descriptor?.defaultLocale);
  }

  /**
   * messages lists the messages shown now (given to 'message', not yet
   * removed), of one kind or all, in the order to show competing ones:
   * higher priority first, then later sent_at.
   */
  messages(kind?: Exclude<Kind, 'kickout'>): Message[] {
    return this.inbox.shown().filter((m) => kind === undefined || m.kind === kind);
  }

  /** stats returns a copy of the counters. */
  stats(): Stats {
    const c = this.inbox.counts;
    return { ...c, received: { ...c.received }, receiptsSent: this.receiptsSent };
  }

  /**
   * close disconnects for good: it waits (a few seconds at most) for the
   * broker to acknowledge the receipts on their way, and emits nothing after.
   */
  close(): Promise<void> {
    if (this.closing === undefined) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.inbox.close();
    const m = this.mqtt;
    // Connected: end waits for in-flight publishes, then says DISCONNECT.
    // A broker that stops answering meanwhile gets its connection dropped.
    await within(CLOSE_WAIT_MS, m.endAsync(!m.connected), () => m.stream?.destroy());
  }

  private onConnect(): void {
    this.attempt = 0;
    this.mqtt.options.reconnectPeriod = backoffDelay(0, this.backoff);
    // A clean session starts with no subscriptions. What the inbox holds from
    // an earlier connection must be confirmed by the retained copies this one brings.
    this.inbox.reconnected();
    this.subscribe([...this.topics], () => this.inbox.subscribed(this.recallGraceMs));
    this.emit('connect');
  }

  /**
   * onAttempt runs as MQTT.js starts a reconnection attempt: should it fail,
   * MQTT.js waits reconnectPeriod before the next, so this is where the wait
   * doubles and gets its jitter (MQTT.js alone would wait a fixed period).
   */
  private onAttempt(): void {
    this.attempt++;
    this.mqtt.options.reconnectPeriod = backoffDelay(this.attempt, this.backoff);
  }

  private onClose(): void {
    if (this.closing !== undefined) return;
    this.emit('reconnecting', this.mqtt.options.reconnectPeriod ?? 0, this.attempt);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (this.closing !== undefined) return;
    try {
      const text = payload.length === 0 ? '' : payload.toString('utf8');
      if (topic === this.descriptorTopic) this.onDescriptor(text);
      else this.inbox.receive(topic, text);
    } catch (err) {
      // The inbox does not throw on any payload; this is the last guard that
      // keeps a bug from reaching MQTT.js's packet handling.
      this.inbox.counts.invalid++;
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onDescriptor(text: string): void {
    if (text === '') return; // the descriptor was cleared: keep the subscriptions we have
    const d = parseDescriptor(text);
    if (d === undefined || d.game !== this.game || d.prefix !== this.prefix) {
      this.inbox.counts.invalid++;
      return;
    }
    this.descriptor = d;
    const next = new Set(subscriptions(d, this.attrs));
    const added = [...next].filter((t) => !this.topics.has(t));
    const gone = [...this.topics].filter((t) => !next.has(t));
    this.topics = next;
    if (this.mqtt.connected) {
      // The broker handles a connection's packets in order: once anything
      // arrives through a new subscription, the gone ones are gone.
      if (gone.length > 0) this.mqtt.unsubscribe(gone, (err) => this.failed('unsubscribe', err));
      if (added.length > 0) this.subscribe(added);
    }
    this.emit('descriptor', d);
  }

  /** subscribe subscribes to topics, QoS 1, and calls then once the broker acknowledged them. */
  private subscribe(topics: string[], then?: () => void): void {
    this.mqtt.subscribe(topics, { qos: 1 }, (err, granted) => {
      this.failed('subscribe', err);
      if (!err) then?.();
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) this.emit('error', new Error(`herald: the broker refused the subscriptions ${refused.join(', ')}`));
    });
  }

  /** receipt publishes a receipt about an accepted id, once per event. */
  private receipt(id: string, e: ReceiptEvent): boolean {
    if (this.closing !== undefined || !this.inbox.accepted(id)) return false;
    let sent = this.receipts.get(id);
    if (sent === undefined) this.receipts.set(id, (sent = new Set()));
    if (sent.has(e)) return false;
    sent.add(e);
    const body = JSON.stringify({ id, e, t: Math.round(this.now()) });
    // Offline, MQTT.js queues it and sends it once connected again.
    this.mqtt.publish(this.receiptsTopic, body, { qos: 1, retain: false }, (err) => {
      if (err) this.failed(`receipt ${e} of ${id}`, err);
      else this.receiptsSent++;
    });
    return true;
  }

  /**
   * failed reports an error of a call to the broker, unless the connection is
   * gone: then the next connection makes up for it (subscriptions), or the
   * client is closing.
   */
  private failed(what: string, err: Error | null | undefined): void {
    if (!err || this.closing !== undefined || !this.mqtt.connected) return;
    this.emit('error', new Error(`herald: ${what}: ${err.message}`));
  }
}

function checkOptions(o: ConnectOptions): void {
  if (typeof o.url !== 'string' || o.url === '') throw new TypeError('herald: url is required');
  for (const [name, v] of [['game', o.game], ['player', o.player]] as const) {
    if (!isId(v)) throw new TypeError(`herald: ${name} ${JSON.stringify(v)} is not an id ([A-Za-z0-9._~:@=-], 1 to 128)`);
  }
  if (o.server !== undefined && !isId(o.server)) throw new TypeError(`herald: server ${JSON.stringify(o.server)} is not an id`);
  if (o.prefix !== undefined && !o.prefix.split('/').every(isId)) throw new TypeError(`herald: prefix ${JSON.stringify(o.prefix)} is not a topic prefix`);
  for (const [tag, v] of Object.entries(o.tags ?? {})) {
    if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) {
      throw new TypeError(`herald: tag ${tag} must be a string (enumerated) or a number (banded)`);
    }
  }
}

/** within waits for p, or for ms at most; then it calls onTimeout. It never rejects. */
function within(ms: number, p: Promise<unknown>, onTimeout: () => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onTimeout();
      resolve();
    }, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    p.then(done, done);
  });
}
