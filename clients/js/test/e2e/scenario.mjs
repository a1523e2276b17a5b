// The TypeScript client's side of Herald's end-to-end player test
// (players_e2e_test.go at the repository root): it runs clients of the built
// package (dist/, `npm run build`) against a real Herald's broker over
// WebSocket and reports what they saw. The Go test drives it through stdin,
// one JSON command a line, and reads one JSON line back per command:
//
//   {"op":"connect","player":"p1","server":"s1","tags":{"region":"eu","level":35}}
//       -> {"ok":true}: a client connects (in the background) with those attributes
//   {"op":"report"}
//       -> {"clients":{"p1":{"connected":true,"shown":[{"id","campaign","kind"}],
//           "removed":[{"campaign","reason"}],"stats":{...},"errors":[...]}}}
//   {"op":"close"} -> {"ok":true}, once every client has closed; then it exits
//
// Environment: HERALD_WS_URL (the broker's WebSocket listener), HERALD_GAME,
// HERALD_PREFIX.
import { createInterface } from 'node:readline';
import { connect } from '../../dist/index.js';

const { HERALD_WS_URL: url, HERALD_GAME: game, HERALD_PREFIX: prefix } = process.env;
if (!url || !game || !prefix) {
  console.error('scenario: set HERALD_WS_URL, HERALD_GAME and HERALD_PREFIX');
  process.exit(2);
}

/** @type {Map<string, {client: import('../../dist/index.js').Client, shown: object[], removed: object[], errors: string[]}>} */
const clients = new Map();

function start({ player, server, tags }) {
  const client = connect({ url, game, prefix, player, server, tags, reconnect: { minMs: 100, maxMs: 1000 } });
  const seen = { client, shown: [], removed: [], errors: [] };
  client.on('message', (m) => seen.shown.push({ id: m.id, campaign: m.campaign, kind: m.kind }));
  client.on('remove', (campaign, reason) => seen.removed.push({ campaign, reason }));
  client.on('error', (e) => seen.errors.push(e.message));
  clients.set(player, seen);
}

function report() {
  const out = {};
  for (const [player, { client, shown, removed, errors }] of clients) {
    out[player] = { connected: client.connected, shown, removed, stats: client.stats(), errors };
  }
  return { clients: out };
}

const reply = (v) => process.stdout.write(JSON.stringify(v) + '\n');

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  switch (cmd.op) {
    case 'connect':
      start(cmd);
      reply({ ok: true });
      break;
    case 'report':
      reply(report());
      break;
    case 'close':
      await Promise.all([...clients.values()].map(({ client }) => client.close()));
      reply({ ok: true });
      process.exit(0);
      break;
    default:
      reply({ error: `unknown op ${cmd.op}` });
  }
}
// stdin closed without "close": the Go test is gone.
await Promise.all([...clients.values()].map(({ client }) => client.close()));
