import type { Client, Descriptor, Kickout, Message, RemoveReason } from '@heraldpush/client';
import { waitFor } from './wait.js';

/** Recorder keeps everything a client emits, with the client's clock at the time. */
export class Recorder {
  readonly messages: Array<Message & { at: number }> = [];
  readonly removes: Array<{ campaign: string; reason: RemoveReason; at: number }> = [];
  readonly kickouts: Kickout[] = [];
  readonly descriptors: Descriptor[] = [];
  readonly reconnecting: Array<{ delayMs: number; attempt: number }> = [];
  readonly errors: Error[] = [];
  connects = 0;
  offlines = 0;

  constructor(
    readonly client: Client,
    now: () => number = Date.now,
  ) {
    client.on('message', (m) => this.messages.push({ ...m, at: now() }));
    client.on('remove', (campaign, reason) => this.removes.push({ campaign, reason, at: now() }));
    client.on('kickout', (k) => this.kickouts.push(k));
    client.on('descriptor', (d) => this.descriptors.push(d));
    client.on('reconnecting', (delayMs, attempt) => this.reconnecting.push({ delayMs, attempt }));
    client.on('error', (e) => this.errors.push(e));
    client.on('connect', () => this.connects++);
    client.on('offline', () => this.offlines++);
  }

  /** shownOf lists the 'message' events of a campaign. */
  shownOf(campaign: string): Message[] {
    return this.messages.filter((m) => m.campaign === campaign);
  }

  /** message waits for a message of campaign (with this id, if given) and returns it. */
  message(campaign: string, id?: string): Promise<Message & { at: number }> {
    return waitFor(
      () => this.messages.find((m) => m.campaign === campaign && (id === undefined || m.id === id)),
      `message of campaign ${campaign}`,
    );
  }

  /** removed waits for the removal of campaign's message and returns it. */
  removed(campaign: string): Promise<{ campaign: string; reason: RemoveReason; at: number }> {
    return waitFor(() => this.removes.find((r) => r.campaign === campaign), `removal of campaign ${campaign}`);
  }
}
