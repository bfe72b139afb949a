// The /dashboard page's script (docs/operations.md "Dashboard"). It joins sys:stats over
// the server's own /ws, and every snapshot (GET /api/stats's {"total","shards"} plus the
// busiest channels and a timestamp, once a second) is turned into rates by comparing it
// with the one before.
//
// Two halves: pure functions of snapshots (rates, histogram percentiles), which node loads
// as a module in tests/integration/dashboard_math.js; and the page, which runs only in a
// browser (no `module` there). embed_dashboard.py inlines this file into the page and
// allows it by its SHA-256 in the Content-Security-Policy, so it must stay one file.
'use strict';

/// Per second, the growth of counter `key` between snapshots `prev` and `cur` of the same
/// part (`total` or one shard); null when it cannot be known (no earlier snapshot, no time
/// between them, or the counter went down: the server restarted).
function rate(prev, cur, key, seconds) {
  if (!prev || !cur || !(seconds > 0) || !(key in prev) || !(key in cur)) return null;
  const grown = cur[key] - prev[key];
  return grown < 0 ? null : grown / seconds;
}

/// The counts of histogram `cur` gathered since `prev` (both as GET /api/stats writes them:
/// {"le":[bounds],"counts":[per bucket, len(le)+1, the last above the last bound],...}).
/// Without a usable `prev` (absent, other bounds, or any count went down: a restart) the
/// whole of `cur`. Null when `cur` is absent or malformed.
function histogram_delta(prev, cur) {
  if (!cur || !Array.isArray(cur.le) || !Array.isArray(cur.counts) ||
      cur.counts.length !== cur.le.length + 1) return null;
  const same = prev && Array.isArray(prev.le) && Array.isArray(prev.counts) &&
      prev.le.length === cur.le.length && prev.le.every((b, i) => b === cur.le[i]) &&
      prev.counts.length === cur.counts.length &&
      prev.counts.every((n, i) => n <= cur.counts[i]);
  return { le: cur.le, counts: same ? cur.counts.map((n, i) => n - prev.counts[i]) : cur.counts.slice() };
}

/// The `q` quantile (0 < q <= 1) of histogram `h` ({le, counts} as above), interpolated
/// linearly inside its bucket, the first bucket starting at 0. {value, above}: `above` is
/// true when the quantile falls in the last bucket, which has no upper bound — `value` is
/// then the last bound, a floor. Null when the histogram holds nothing.
function quantile(h, q) {
  if (!h) return null;
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const n = h.counts[i];
    if (n > 0 && below + n >= rank) {
      if (i === h.le.length) return { value: h.le[h.le.length - 1], above: true };
      const lower = i === 0 ? 0 : h.le[i - 1];
      const upper = h.le[i];
      return { value: lower + (upper - lower) * Math.max(0, rank - below) / n, above: false };
    }
    below += n;
  }
  return { value: h.le[h.le.length - 1], above: true };
}

/// p50, p90 and p99 of the histogram field `key` of one part between two snapshots: an
/// object of three quantile() results (each possibly null), or null when the field is
/// absent from `cur` (a server without the histograms).
function percentiles(prev_part, cur_part, key) {
  if (!cur_part || !cur_part[key]) return null;
  const delta = histogram_delta(prev_part && prev_part[key], cur_part[key]);
  if (!delta) return null;
  return { p50: quantile(delta, 0.5), p90: quantile(delta, 0.9), p99: quantile(delta, 0.99) };
}

/// A quantile() result as text in microseconds or milliseconds; "—" for nothing.
function format_us(result) {
  if (!result) return '—';
  const v = result.value;
  const text = v >= 10000 ? (v / 1000).toFixed(0) + ' ms' : v >= 1000 ? (v / 1000).toFixed(1) + ' ms'
      : v.toFixed(0) + ' µs';
  return (result.above ? '>' : '') + text;
}

/// A quantile() result as text in bytes (B, KiB, MiB); "—" for nothing.
function format_bytes(result) {
  if (!result) return '—';
  const v = result.value;
  const text = v >= 1048576 ? (v / 1048576).toFixed(1) + ' MiB' : v >= 1024 ? (v / 1024).toFixed(1) + ' KiB'
      : v.toFixed(0) + ' B';
  return (result.above ? '>' : '') + text;
}

/// A rate or a gauge as short text: "—" for null, k / M above a thousand / a million.
function format_number(v) {
  if (v === null || v === undefined) return '—';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return v >= 100 || Number.isInteger(v) ? Math.round(v).toString() : v.toFixed(1);
}

/// Closes of all kinds counted in one part: slow consumers, output and inbound budgets,
/// missed acks, expired tokens. Connections that simply ended are `closed`.
function forced_closes(part) {
  if (!part) return undefined;
  return ['slow_consumer_closes', 'output_budget_closes', 'inbound_budget_closes', 'ack_closes',
          'token_expiry_closes'].reduce((sum, k) => sum + (part[k] || 0), 0);
}

/// Everything the page shows for one part (total or a shard) between two snapshots.
function figures(prev, cur, seconds) {
  const p = prev || null;
  const with_forced = part => part && Object.assign({ forced_closes: forced_closes(part) }, part);
  const a = with_forced(p), b = with_forced(cur);
  return {
    connections: cur.connections,
    sessions: cur.sessions,
    subscriptions: cur.subscriptions,
    in_per_s: rate(a, b, 'messages_in', seconds),
    out_per_s: rate(a, b, 'messages_out', seconds),
    dropped_per_s: rate(a, b, 'dropped', seconds),
    closed_per_s: rate(a, b, 'closed', seconds),
    forced_closes_per_s: rate(a, b, 'forced_closes', seconds),
    latency: percentiles(p, cur, 'publish_to_send_us'),
    // Queue depth is sampled at each snapshot (every connection's queue now), not counted
    // up like latency: its percentiles are the current sample's, no difference taken.
    queue: percentiles(null, cur, 'queue_depth_bytes'),
  };
}

const dashboard_math = { rate, histogram_delta, quantile, percentiles, format_us, format_bytes,
                         format_number,
                         forced_closes, figures };

if (typeof module === 'object' && module.exports) {
  module.exports = dashboard_math;
} else {
  start_page();
}

// ---- the page -----------------------------------------------------------------------------

function start_page() {
  const $ = id => document.getElementById(id);
  const history_points = 60; // a minute of sparkline at one snapshot a second
  const series = { connections: [], in_per_s: [], out_per_s: [], p99: [] };
  let previous = null;
  let socket = null;
  let retry_ms = 1000;

  const set_status = (text, cls) => { const s = $('status'); s.textContent = text; s.className = cls; };

  const token_field = $('token');
  token_field.value = sessionStorage.getItem('ringcast.dashboard.token') || '';
  $('auth').addEventListener('submit', ev => {
    ev.preventDefault();
    sessionStorage.setItem('ringcast.dashboard.token', token_field.value.trim());
    if (socket) socket.close();
    else connect();
  });

  function connect() {
    const token = sessionStorage.getItem('ringcast.dashboard.token') || '';
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' +
        (token ? '?token=' + encodeURIComponent(token) : '');
    set_status('connecting…', 'wait');
    socket = new WebSocket(url);
    socket.onopen = () => {
      retry_ms = 1000;
      socket.send(JSON.stringify({ op: 'subscribe', channel: 'sys:stats', id: 1 }));
    };
    socket.onmessage = ev => {
      const m = JSON.parse(ev.data);
      if (m.op === 'reply' && m.id === 1) {
        if (m.ok) {
          set_status('connected, waiting for the first snapshot', 'wait');
        } else {
          set_status('refused: ' + m.error.message, 'bad');
          $('auth').hidden = false;
        }
        return;
      }
      if (m.channel === 'sys:stats' && m.data) show(m.data);
    };
    socket.onclose = ev => {
      socket = null;
      set_status('disconnected (' + ev.code + (ev.reason ? ' ' + ev.reason : '') + '); retrying', 'bad');
      if (ev.code === 1006) $('auth').hidden = false;
      setTimeout(connect, retry_ms);
      retry_ms = Math.min(retry_ms * 2, 30000);
    };
  }

  function push(list, v) {
    list.push(v === null || v === undefined ? null : v);
    if (list.length > history_points) list.shift();
  }

  function show(snap) {
    const seconds = previous ? (snap.timestamp - previous.timestamp) / 1000 : 0;
    const f = figures(previous && previous.total, snap.total, seconds);
    set_status('live — ' + new Date(snap.timestamp).toLocaleTimeString() + ', ' +
               snap.shards.length + ' shard' + (snap.shards.length === 1 ? '' : 's'), 'ok');
    $('connections').textContent = format_number(f.connections);
    $('sessions').textContent = format_number(f.sessions) + ' sessions, ' +
        format_number(f.subscriptions) + ' subscriptions';
    $('in_per_s').textContent = format_number(f.in_per_s);
    $('out_per_s').textContent = format_number(f.out_per_s);
    $('dropped_per_s').textContent = format_number(f.dropped_per_s);
    $('closed_per_s').textContent = format_number(f.closed_per_s);
    $('forced_per_s').textContent = format_number(f.forced_closes_per_s) + ' forced';
    $('p50').textContent = format_us(f.latency && f.latency.p50);
    $('p90').textContent = format_us(f.latency && f.latency.p90);
    $('p99').textContent = format_us(f.latency && f.latency.p99);
    push(series.connections, f.connections);
    push(series.in_per_s, f.in_per_s);
    push(series.out_per_s, f.out_per_s);
    push(series.p99, f.latency && f.latency.p99 ? f.latency.p99.value : null);
    draw($('spark_connections'), series.connections);
    draw($('spark_in'), series.in_per_s);
    draw($('spark_out'), series.out_per_s);
    draw($('spark_p99'), series.p99);
    shards_table(snap);
    channels_table(snap.channels || []);
    previous = snap;
  }

  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text;
    row.appendChild(td);
  }

  function shards_table(snap) {
    const body = $('shards');
    body.replaceChildren();
    const seconds = previous ? (snap.timestamp - previous.timestamp) / 1000 : 0;
    snap.shards.forEach((shard, i) => {
      const f = figures(previous && previous.shards[i], shard, seconds);
      const row = document.createElement('tr');
      cell(row, String(i));
      cell(row, format_number(f.connections));
      cell(row, format_number(f.sessions));
      cell(row, format_number(f.in_per_s));
      cell(row, format_number(f.out_per_s));
      cell(row, format_number(f.dropped_per_s));
      cell(row, format_number(f.closed_per_s));
      cell(row, format_us(f.latency && f.latency.p50));
      cell(row, format_us(f.latency && f.latency.p99));
      cell(row, format_bytes(f.queue && f.queue.p99));
      body.appendChild(row);
    });
  }

  function channels_table(channels) {
    const body = $('channels');
    body.replaceChildren();
    if (channels.length === 0) {
      const row = document.createElement('tr');
      cell(row, 'no channel has subscribers');
      cell(row, '');
      body.appendChild(row);
    }
    for (const c of channels) {
      const row = document.createElement('tr');
      cell(row, c.channel);
      cell(row, format_number(c.subscribers));
      body.appendChild(row);
    }
  }

  /// A sparkline of `values` (nulls are gaps) on `canvas`, scaled to its largest value.
  function draw(canvas, values) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * ratio;
    canvas.height = h * ratio;
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, h);
    const top = Math.max(1, ...values.filter(v => v !== null));
    g.strokeStyle = '#2a6fdb';
    g.lineWidth = 1.5;
    g.beginPath();
    let drawing = false;
    values.forEach((v, i) => {
      if (v === null) { drawing = false; return; }
      const x = w - (values.length - 1 - i) * (w / (history_points - 1));
      const y = h - 2 - (h - 4) * v / top;
      if (drawing) g.lineTo(x, y); else g.moveTo(x, y);
      drawing = true;
    });
    g.stroke();
  }

  connect();
}
