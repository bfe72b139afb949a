#!/usr/bin/env node
// Writes one self-contained HTML file (no network, opens from file://) that shows folded
// stacks ("root;...;leaf COUNT" per line) in speedscope, the pinned renderer installed by
// `npm ci --prefix perf/flamegraph`. Used by perf/flame; see perf/README.md "Flame graphs".
//
//   node perf/flamegraph/render.mjs --in perf.folded --out flame.html [--title T] [--view V]
//
// speedscope's offline build (dist/release) is one HTML page, one CSS file with a web font,
// and one JS bundle. All three are inlined here, the font as a data: URL. The profile is
// handed over through the hook speedscope's own CLI uses: with `#localProfilePath=...` in
// the URL hash the app defines window.speedscope.loadFileFromBase64(name, base64) and then
// loads a script from that path. We set the hash before the bundle runs and call the hook
// as soon as the app defines it; the script load it then starts (file:///embedded) fails
// harmlessly and is only visible in the browser console. Other hash parameters speedscope
// reads (view=left-heavy|time-ordered|sandwich, title=...) are kept when the reader sets them.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const release = path.join(here, 'node_modules', 'speedscope', 'dist', 'release')
const views = new Set(['left-heavy', 'time-ordered', 'sandwich'])

function fail(message) {
  process.stderr.write(`render.mjs: ${message}\n`)
  process.exit(2)
}

function parseArgs(argv) {
  const opts = { title: 'profile', view: 'left-heavy' }
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]
    const value = argv[i + 1]
    if (!['--in', '--out', '--title', '--view'].includes(key) || value === undefined) {
      fail(`usage: render.mjs --in FOLDED --out HTML [--title T] [--view ${[...views].join('|')}]`)
    }
    opts[key.slice(2)] = value
    i++
  }
  if (!opts.in || !opts.out) fail('--in and --out are required')
  if (!views.has(opts.view)) fail(`--view must be one of ${[...views].join(', ')}`)
  return opts
}

// Inline <script> text must not contain "</script"; JSON.stringify output and base64 never
// do, the bundle is checked rather than rewritten (rewriting could change a regex literal).
function assertInlineSafe(text, what) {
  if (/<\/script/i.test(text)) fail(`${what} contains "</script" and cannot be inlined`)
  return text
}

function speedscopeAssets() {
  const indexPath = path.join(release, 'index.html')
  if (!fs.existsSync(indexPath)) {
    fail(`${indexPath} is missing: run "npm ci --prefix perf/flamegraph" first`)
  }
  const index = fs.readFileSync(indexPath, 'utf8')
  const css = /<link rel="stylesheet" href="([^"]+)">/.exec(index)
  const js = /<script src="([^"]+)"><\/script>/.exec(index)
  if (!css || !js) fail(`unexpected layout of ${indexPath}: is this the pinned speedscope?`)
  const cssText = fs
    .readFileSync(path.join(release, css[1]), 'utf8')
    .replace(/\/\*# sourceMappingURL=[^*]*\*\//g, '')
    .replace(/url\("\.\/([^"]+)"\)/g, (whole, file) => {
      const asset = path.join(release, file)
      if (!fs.existsSync(asset)) return whole
      const mime = file.endsWith('.woff2') ? 'font/woff2' : 'application/octet-stream'
      return `url("data:${mime};base64,${fs.readFileSync(asset).toString('base64')}")`
    })
  const jsText = fs
    .readFileSync(path.join(release, js[1]), 'utf8')
    .replace(/\/\/# sourceMappingURL=\S*\s*$/, '')
  const pkg = JSON.parse(
    fs.readFileSync(path.join(here, 'node_modules', 'speedscope', 'package.json'), 'utf8'),
  )
  return { css: cssText, js: assertInlineSafe(jsText, 'the speedscope bundle'), version: pkg.version }
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
}

const opts = parseArgs(process.argv.slice(2))
const folded = fs.readFileSync(opts.in)
const lines = folded.toString('utf8').split('\n').filter(l => l.length > 0)
if (lines.length === 0) fail(`${opts.in} has no stacks`)
const bad = lines.find(l => !/^\S.* \d+$/.test(l))
if (bad !== undefined) fail(`${opts.in}: not a folded-stack line: ${bad.slice(0, 200)}`)

const assets = speedscopeAssets()
// The ".collapsedstack.txt" suffix selects speedscope's folded-stack importer by name.
const hook = `(function () {
  var name = ${JSON.stringify(path.basename(opts.in) + '.collapsedstack.txt')};
  var data = ${JSON.stringify(folded.toString('base64'))};
  // Keep what the reader put in the hash (e.g. #view=sandwich), add what is missing.
  var hash = location.hash.replace(/^#/, '');
  var defaults = { localProfilePath: 'embedded', view: ${JSON.stringify(opts.view)},
    title: encodeURIComponent(${JSON.stringify(opts.title)}) };
  for (var key in defaults) {
    if (!new RegExp('(^|&)' + key + '=').test(hash)) {
      hash += (hash ? '&' : '') + key + '=' + defaults[key];
    }
  }
  history.replaceState(null, '', '#' + hash);
  var api;
  Object.defineProperty(window, 'speedscope', {
    configurable: true,
    get: function () { return api; },
    set: function (value) {
      api = value;
      setTimeout(function () { value.loadFileFromBase64(name, data); }, 0);
    }
  });
})();`

const html = `<!DOCTYPE html>
<html>
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="generator" content="ringcast perf/flame, speedscope ${assets.version}">
<title>${escapeHtml(opts.title)}</title>
<style>${assets.css}</style>
</head>
<body>
<script>${assertInlineSafe(hook, 'the profile')}</script>
<script>${assets.js}</script>
</body>
</html>
`
fs.writeFileSync(opts.out, html)
process.stdout.write(
  `render.mjs: ${opts.out} (${(html.length / 1e6).toFixed(1)} MB, ${lines.length} stacks, speedscope ${assets.version})\n`,
)
