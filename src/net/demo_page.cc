// The demo page served at "/": a live channel. It joins chat:lobby over /ws, shows every
// message published there (by this page, other browsers, or the backend API) and publishes
// what you type. Needs --client-publish chat to publish from the page (--insecure adds a
// user id so messages show who sent them).
#include "gateway.h"

namespace ringcast::net {

std::string_view demo_page() noexcept {
    return R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringcast demo</title>
<style>
body{font:15px system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
#log{border:1px solid #ccc;border-radius:6px;height:20rem;overflow:auto;padding:.5rem;
     font:13px ui-monospace,monospace;background:#fafafa;white-space:pre-wrap}
.msg{color:#064}.sys{color:#888}.err{color:#a00}
form{display:flex;gap:.5rem;margin-top:.5rem} input{flex:1;padding:.4rem}
pre{background:#f3f3f3;padding:.6rem;border-radius:6px;overflow:auto;font-size:12px}
</style></head><body>
<h1>ringcast</h1>
<p>Status: <b id="status">connecting…</b> — channel <code>chat:lobby</code> as
<code id="who"></code></p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="type a message for chat:lobby">
<button>Publish</button><button type="button" id="burst">Publish 100</button></form>
<p>From a backend (or another terminal):</p>
<pre id="curl"></pre>
<script>
const user = 'demo-' + Math.random().toString(36).slice(2, 7);
const base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
document.getElementById('who').textContent = user;
document.getElementById('curl').textContent =
  "curl -s -d '{\"channel\":\"chat:lobby\",\"event\":\"text\",\"data\":{\"text\":\"hello from curl\"}}' " +
  location.origin + "/api/publish";
const log = (cls, text) => { const d = document.createElement('div'); d.className = cls;
  d.textContent = new Date().toISOString().slice(11, 23) + '  ' + text;
  const l = document.getElementById('log'); l.appendChild(d); l.scrollTop = l.scrollHeight; };
const ws = new WebSocket(base + '/ws?user=' + user);
let next = 1;
const send = cmd => { cmd.id = next++; ws.send(JSON.stringify(cmd)); };
ws.onopen = () => { document.getElementById('status').textContent = 'connected';
  send({op: 'subscribe', channel: 'chat:lobby'}); };
ws.onclose = e => { document.getElementById('status').textContent = 'closed (' + e.code + ')';
  log('sys', 'closed ' + e.code + ' ' + e.reason); };
ws.onmessage = e => {
  const m = JSON.parse(e.data);
  if (m.op === 'reply') {
    if (!m.ok) log('err', 'error ' + m.error.code + ': ' + m.error.message);
    else if (m.channel) log('sys', 'subscribed to ' + m.channel + ' at offset ' + m.offset);
    return;
  }
  const text = m.data && typeof m.data === 'object' && 'text' in m.data ? m.data.text : JSON.stringify(m.data);
  log('msg', '#' + m.offset + ' ' + (m.userId || 'backend') + ': ' + text);
};
document.getElementById('form').onsubmit = ev => { ev.preventDefault();
  const t = document.getElementById('text'); if (!t.value) return;
  send({op: 'publish', channel: 'chat:lobby', event: 'text', data: {text: t.value}}); t.value = ''; };
document.getElementById('burst').onclick = () => {
  for (let i = 1; i <= 100; i++) send({op: 'publish', channel: 'chat:lobby', event: 'text', data: {text: 'burst ' + i}}); };
</script></body></html>
)html";
}

// The Socket.IO demo at "/socketio": a page as any Socket.IO front end is written — the
// client library from /socket.io/socket.io.js (--socketio-client-js), io() with its
// default transports (long-polling, then the upgrade), a room joined with an ack, events
// listened for — receiving what a backend publishes with curl to channel "news".
std::string_view socketio_demo_page() noexcept {
    return R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringcast: Socket.IO demo</title>
<style>
body{font:15px system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
#log{border:1px solid #ccc;border-radius:6px;height:20rem;overflow:auto;padding:.5rem;
     font:13px ui-monospace,monospace;background:#fafafa;white-space:pre-wrap}
.msg{color:#064}.sys{color:#888}.err{color:#a00}
pre{background:#f3f3f3;padding:.6rem;border-radius:6px;overflow:auto;font-size:12px}
</style></head><body>
<h1>ringcast: Socket.IO</h1>
<p>An unchanged <code>socket.io-client</code> page: <b id="status">connecting…</b>
(transport <code id="transport">-</code>), room <code>news</code>.</p>
<div id="log"></div>
<p>Publish from a backend; every page open here shows it:</p>
<pre id="curl"></pre>
<script src="/socket.io/socket.io.js"></script>
<script>
const log = (cls, text) => { const d = document.createElement('div'); d.className = cls;
  d.textContent = new Date().toISOString().slice(11, 23) + '  ' + text;
  const l = document.getElementById('log'); l.appendChild(d); l.scrollTop = l.scrollHeight; };
document.getElementById('curl').textContent =
  "curl -s -d '{\"channel\":\"news\",\"event\":\"notification\",\"data\":{\"text\":\"hello\"}}' " +
  location.origin + "/api/publish";
if (typeof io !== 'function') {
  document.getElementById('status').textContent = 'no /socket.io/socket.io.js';
  log('err', 'start ringcastd with --socketio-client-js PATH/socket.io.min.js');
} else {
  const socket = io();
  socket.on('connect', () => {
    document.getElementById('status').textContent = 'connected' + (socket.recovered ? ' (recovered)' : '');
    document.getElementById('transport').textContent = socket.io.engine.transport.name;
    socket.io.engine.on('upgrade', t => { document.getElementById('transport').textContent = t.name; });
    if (!socket.recovered) {
      socket.emit('join_room', 'news', ack => log(ack.ok ? 'sys' : 'err',
        ack.ok ? 'joined news at offset ' + ack.offset : 'join refused: ' + ack.error.message));
    }
  });
  socket.on('disconnect', reason => { document.getElementById('status').textContent = 'disconnected';
    log('sys', 'disconnected: ' + reason); });
  socket.on('connect_error', e => log('err', 'connect error: ' + e.message));
  socket.on('notification', data => log('msg', JSON.stringify(data)));
}
</script></body></html>
)html";
}

} // namespace ringcast::net
