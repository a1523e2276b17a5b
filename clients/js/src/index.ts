/**
 * @heraldpush/client: Herald's client for HTML5 games and Cocos Creator. It
 * implements Herald's client protocol (docs/protocol.md): subscriptions from the
 * game's descriptor, filters, de-duplication, starts_at and expires_at, receipts
 * and kick-outs, over MQTT (WebSocket in browsers) with MQTT.js.
 */
export { connect, Client } from './client.js';
export type { ClientEvents, ConnectOptions, ReceiptEvent, Stats } from './client.js';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export type { Backoff } from './backoff.js';
export { descriptorTopic, parseDescriptor, subscriptions } from './descriptor.js';
export type { Descriptor, TagSpec } from './descriptor.js';
export { parseEnvelope } from './envelope.js';
export type {
  AdContent,
  Envelope,
  KickoutContent,
  Kind,
  Localized,
  MarqueeContent,
  Message,
  NoticeContent,
  Parsed,
} from './envelope.js';
export { matches, withinLimits, MAX_FILTER_DEPTH, MAX_FILTER_NODES } from './filter.js';
export type { Attributes, Filter } from './filter.js';
export { byPriority } from './inbox.js';
export type { Counts, Kickout, RemoveReason } from './inbox.js';
export { isId } from './ids.js';
export { pickText } from './locale.js';
