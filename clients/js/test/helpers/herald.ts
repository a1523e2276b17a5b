import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { waitFor } from './wait.js';

/** A receipt as Herald reads it, with the topic it came on. */
export interface Receipt {
  id: string;
  e: string;
  t: number;
  topic: string;
  retain: boolean;
}

/** What a test may set of an envelope; the rest gets defaults. */
export interface EnvelopeSpec {
  kind?: string;
  id?: string;
  campaign?: string;
  sentAt?: number;
  startsAt?: number;
  expiresAt?: number;
  priority?: number;
  filter?: unknown;
  content?: Record<string, unknown>;
  /** Members to add or override as they are (for malformed envelopes). */
  extra?: Record<string, unknown>;
}

const CONTENT: Record<string, Record<string, unknown>> = {
  marquee: { text: { en: 'Maintenance at 10:00 UTC', 'zh-CN': '10:00 维护' }, repeat: 3, interval_s: 0 },
  notice: { title: { en: 'Notice' }, body: { en: 'Body' }, link: 'https://example.com/n' },
  ad: { image_url: 'https://example.com/a.png', click_url: 'https://example.com/a', placement: 'center', display_s: 10 },
  kickout: { reason: 'login_elsewhere', message: { en: 'You logged in elsewhere' }, reconnect_after_s: 30 },
};

/**
 * Herald stands in for the server in tests: an MQTT.js client over TCP that
 * publishes descriptors and envelopes the way Herald does (retained, QoS 1;
 * kick-outs not retained) and listens to one game's receipts.
 */
export class Herald {
  readonly receipts: Receipt[] = [];

  private constructor(
    private readonly mqtt: MqttClient,
    readonly game: string,
    readonly prefix: string,
  ) {}

  /** connect connects to the broker's TCP listener and subscribes to the game's receipts. */
  static async connect(url: string, game: string, prefix = 'herald'): Promise<Herald> {
    const client = await mqtt.connectAsync(url, { clientId: `herald-${randomUUID()}`, reconnectPeriod: 200 });
    const h = new Herald(client, game, prefix);
    client.on('message', (topic, payload, packet) => {
      h.receipts.push({ ...(JSON.parse(payload.toString()) as Omit<Receipt, 'topic' | 'retain'>), topic, retain: packet.retain });
    });
    // Resubscribed by MQTT.js after a reconnect.
    await client.subscribeAsync(`${prefix}/${game}/receipts/+`, { qos: 1 });
    return h;
  }

  get connected(): boolean {
    return this.mqtt.connected;
  }

  /** topic is a topic of the game: topic('all/marquee/c1'). */
  topic(rest: string): string {
    return `${this.prefix}/${this.game}/${rest}`;
  }

  /** descriptor publishes the game's descriptor, retained. */
  async descriptor(tags: Record<string, unknown>, updatedAt = new Date().toISOString()): Promise<void> {
    const d = { v: 1, game: this.game, prefix: this.prefix, default_locale: 'en', tags, updated_at: updatedAt };
    await this.publish('descriptor', JSON.stringify(d));
  }

  /** envelope builds an envelope's JSON object from a spec. */
  envelope(spec: EnvelopeSpec = {}): Record<string, unknown> & { id: string; campaign: string } {
    const kind = spec.kind ?? 'marquee';
    const now = Date.now();
    const e: Record<string, unknown> & { id: string; campaign: string } = {
      v: 1,
      id: spec.id ?? randomUUID(),
      campaign: spec.campaign ?? randomUUID(),
      kind,
      game: this.game,
      sent_at: iso(spec.sentAt ?? now),
      expires_at: iso(spec.expiresAt ?? now + 3_600_000),
      priority: spec.priority ?? 5,
      content: spec.content ?? CONTENT[kind] ?? {},
    };
    if (spec.startsAt !== undefined) e.starts_at = iso(spec.startsAt);
    if (spec.filter !== undefined) e.filter = spec.filter;
    return Object.assign(e, spec.extra);
  }

  /**
   * send publishes an envelope (retained, QoS 1) to {where}/{kind}/{campaign}
   * under the game, where being "all", "server/s1", "tag/level/30-39" or
   * "player/p1"; kick-outs are never retained. It returns the envelope.
   */
  async send(where: string, spec: EnvelopeSpec = {}): Promise<ReturnType<Herald['envelope']>> {
    const e = this.envelope(spec);
    await this.publish(`${where}/${e.kind}/${e.campaign}`, JSON.stringify(e), e.kind !== 'kickout');
    return e;
  }

  /** publish publishes a payload as it is, QoS 1, under the game. */
  async publish(rest: string, payload: string | Buffer, retain = true): Promise<void> {
    await this.mqtt.publishAsync(this.topic(rest), payload, { qos: 1, retain });
  }

  /** remove publishes the empty payload that removes a campaign's message, clearing the retained one. */
  async remove(rest: string): Promise<void> {
    await this.publish(rest, '', true);
  }

  /** receiptsOf lists the receipts received for id. */
  receiptsOf(id: string): Receipt[] {
    return this.receipts.filter((r) => r.id === id);
  }

  /** receipt waits for the receipt e of id and returns it. */
  receipt(id: string, e: string): Promise<Receipt> {
    return waitFor(() => this.receipts.find((r) => r.id === id && r.e === e), `receipt ${e} of ${id}`);
  }

  async close(): Promise<void> {
    await this.mqtt.endAsync(true);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
