// The demo page served at "/" when --echo is on: connects to the echo endpoint and shows
// every message sent and echoed, so a person can see the server working in a browser.
#include "gateway.h"

namespace ringcast::net {

std::string_view demo_page() noexcept {
    return R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringcast echo demo</title>
<style>
body{font:15px system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
#log{border:1px solid #ccc;border-radius:6px;height:18rem;overflow:auto;padding:.5rem;
     font:13px ui-monospace,monospace;background:#fafafa}
.in{color:#064}.out{color:#235}.sys{color:#888}
form{display:flex;gap:.5rem;margin-top:.5rem} input{flex:1;padding:.4rem}
</style></head><body>
<h1>ringcast</h1>
<p>Status: <b id="status">connecting…</b> — endpoint <code id="url"></code></p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="type a message and press Enter">
<button>Send</button><button type="button" id="burst">Send 1,000</button></form>
<script>
const path = 'ECHO_PATH';
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
document.getElementById('url').textContent = url;
const log = (cls, text) => { const d = document.createElement('div'); d.className = cls;
  d.textContent = new Date().toISOString().slice(11, 23) + '  ' + text;
  const l = document.getElementById('log'); l.appendChild(d); l.scrollTop = l.scrollHeight; };
const ws = new WebSocket(url);
let burst = null;
ws.onopen = () => { document.getElementById('status').textContent = 'connected'; log('sys', 'connected'); };
ws.onclose = e => { document.getElementById('status').textContent = 'closed (' + e.code + ')'; log('sys', 'closed ' + e.code + ' ' + e.reason); };
ws.onmessage = e => {
  if (burst && e.data.startsWith('burst ')) { if (++burst.got === burst.n) {
    log('in', 'echoed ' + burst.n + ' messages in ' + (performance.now() - burst.t0).toFixed(1) + ' ms'); burst = null; } return; }
  log('in', '← ' + e.data); };
document.getElementById('form').onsubmit = ev => { ev.preventDefault();
  const t = document.getElementById('text'); if (!t.value) return;
  ws.send(t.value); log('out', '→ ' + t.value); t.value = ''; };
document.getElementById('burst').onclick = () => { burst = {n: 1000, got: 0, t0: performance.now()};
  for (let i = 0; i < 1000; i++) ws.send('burst ' + i); };
</script></body></html>
)html";
}

} // namespace ringcast::net
