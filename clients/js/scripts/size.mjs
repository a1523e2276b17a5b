// Reports what the client adds to a game: dist/ bundled for browsers with
// esbuild, minified, with MQTT.js (what a game ships) and without it.
// Run through `npm run size`, which builds dist/ first.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

for (const [what, external] of [
  ['client + mqtt.js', []],
  ['client alone', ['mqtt']],
]) {
  const result = await build({
    entryPoints: ['dist/index.js'],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    external,
    write: false,
    logLevel: 'warning',
  });
  const code = result.outputFiles[0].contents;
  console.log(`${what.padEnd(17)} ${kib(code.length).padStart(10)} minified ${kib(gzipSync(code, { level: 9 }).length).padStart(10)} gzipped`);
}
