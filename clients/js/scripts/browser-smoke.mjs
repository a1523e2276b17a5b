// A smoke test of the browser build: esbuild bundles the client with MQTT.js's
// browser build, as a game's bundler would; headless Chromium loads it from a
// local page, connects over WebSocket to a private Mosquitto, shows a retained
// marquee reached through a band topic and says displayed. Not part of
// `npm test` (CI has no browser): run `npm run smoke:browser` where Chromium
// is installed (Debian: apt-get install chromium).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Broker } from '../dist/test/helpers/broker.js';
import { Herald } from '../dist/test/helpers/herald.js';
import { waitFor } from '../dist/test/helpers/wait.js';

const PAGE_SCRIPT = `
import { connect } from './dist/index.js';
const q = new URLSearchParams(location.search);
const post = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });
const client = connect({ url: q.get('url'), game: q.get('game'), player: 'p1', tags: { level: 35 }, locale: 'zh-CN' });
client.on('error', (e) => post({ error: String(e) }));
client.on('message', (m) => {
  client.displayed(m.id);
  post({ id: m.id, kind: m.kind, text: client.text(m.content.text), sentAt: m.sentAt.toISOString(), userAgent: navigator.userAgent });
});
`;

const broker = await Broker.start();
const profile = await mkdtemp(join(tmpdir(), 'herald-js-chromium-'));
let chromium;
let server;
try {
  const herald = await Herald.connect(broker.tcpUrl, 'smoke');
  await herald.descriptor({ level: { bands: [[30, 39]] } });
  const e = await herald.send('tag/level/30-39');

  const bundle = await build({
    stdin: { contents: PAGE_SCRIPT, resolveDir: process.cwd(), sourcefile: 'page.js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'warning',
  });
  const results = [];
  server = http.createServer((req, res) => {
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => results.push(JSON.parse(body)));
      res.end();
    } else if (req.url === '/bundle.js') {
      res.setHeader('content-type', 'text/javascript');
      res.end(bundle.outputFiles[0].contents);
    } else {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><script type="module" src="/bundle.js"></script>');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const page = `http://127.0.0.1:${server.address().port}/?url=${encodeURIComponent(broker.wsUrl)}&game=smoke`;
  // Its own process group, so that its helper processes go with it.
  chromium = spawn('chromium', ['--headless=new', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, page], {
    stdio: 'ignore',
    detached: true,
  });

  const got = await waitFor(() => results[0], 'the page to show the marquee');
  if (got.error) throw new Error(`the page reported: ${got.error}`);
  await herald.receipt(e.id, 'delivered');
  await herald.receipt(e.id, 'displayed');
  if (got.id !== e.id || got.kind !== 'marquee' || got.text !== '10:00 维护') throw new Error(`unexpected: ${JSON.stringify(got)}`);
  console.log(`browser smoke test passed: ${got.userAgent}: shown ${JSON.stringify(got.text)}, delivered and displayed receipts received`);
  await herald.close();
} finally {
  if (chromium?.exitCode === null) {
    const exited = new Promise((resolve) => chromium.once('exit', resolve));
    process.kill(-chromium.pid, 'SIGKILL');
    await exited;
  }
  server?.close();
  await broker.stop();
  await rm(profile, { recursive: true, force: true });
}
