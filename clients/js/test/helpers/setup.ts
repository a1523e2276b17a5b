import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { connect, type Client, type ConnectOptions } from '@heraldpush/client';
import type { Broker } from './broker.js';
import { Herald } from './herald.js';
import { Recorder } from './recorder.js';

/** The longest any one broker test may take before it fails rather than hangs. */
export const TEST_TIMEOUT_MS = 120_000;

/** heraldFor connects a stand-in Herald for a game of its own (so tests sharing a broker never meet). */
export async function heraldFor(t: TestContext, broker: Broker): Promise<Herald> {
  const herald = await Herald.connect(broker.tcpUrl, `g-${randomUUID().slice(0, 8)}`);
  t.after(() => herald.close());
  return herald;
}

/**
 * start connects a client for player p1 on server s1 of herald's game over
 * the broker's WebSocket listener, records its events, and closes it after the test.
 */
export function start(t: TestContext, broker: Broker, herald: Herald, o: Partial<ConnectOptions> = {}): { client: Client; rec: Recorder } {
  const client = connect({ url: broker.wsUrl, game: herald.game, player: 'p1', server: 's1', ...o });
  const rec = new Recorder(client, o.now);
  t.after(() => client.close());
  return { client, rec };
}

/**
 * marker sends a marquee (retained, QoS 1) to where and waits until the client
 * shows it. Herald's publishes reach a client in order, so once the marker is
 * there everything sent before it is too (or will never be), and a retained
 * marker also tells that the client's subscription to where is in place.
 */
export async function marker(herald: Herald, rec: Recorder, where = 'all'): Promise<string> {
  const e = await herald.send(where, { campaign: `marker-${randomUUID()}` });
  await rec.message(e.campaign);
  return e.campaign;
}
