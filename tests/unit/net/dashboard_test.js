#!/usr/bin/env node
// The /dashboard page's arithmetic (src/net/dashboard/dashboard.js), loaded by node as a
// module: rates between snapshots, histogram differences, interpolated percentiles and
// their text. Synthetic snapshots only; the page itself is driven in Chromium by
// tests/integration/dashboard_browser.js. Prints TAP; needs nothing beyond node.
//
// Usage: node dashboard_test.js PATH/TO/src/net/dashboard/dashboard.js
'use strict';

const assert = require('assert');
const path = require('path');

const file = process.argv[2] || path.join(__dirname, '../../../src/net/dashboard/dashboard.js');
const m = require(path.resolve(file));

// {le, counts} with `counts` per bucket (not cumulative), the last above the last bound,
// as GET /api/stats writes "publish_to_send_us".
const hist = (le, counts) => ({ le, counts, count: counts.reduce((a, b) => a + b, 0), sum: 0 });
const close = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a}, expected ${b}`);

const cases = [
  ['rate: growth per second; null without an earlier snapshot, time, or after a restart', () => {
    assert.strictEqual(m.rate({ messages_in: 10 }, { messages_in: 40 }, 'messages_in', 2), 15);
    assert.strictEqual(m.rate(null, { messages_in: 40 }, 'messages_in', 2), null);
    assert.strictEqual(m.rate({ messages_in: 10 }, { messages_in: 40 }, 'messages_in', 0), null);
    assert.strictEqual(m.rate({ messages_in: 50 }, { messages_in: 40 }, 'messages_in', 1), null);
    assert.strictEqual(m.rate({}, { messages_in: 40 }, 'messages_in', 1), null);
  }],
  ['histogram_delta: the counts since the previous snapshot; all of them after a restart', () => {
    const a = hist([10, 100], [1, 2, 3]);
    const b = hist([10, 100], [4, 2, 5]);
    assert.deepStrictEqual(m.histogram_delta(a, b).counts, [3, 0, 2]);
    assert.deepStrictEqual(m.histogram_delta(null, b).counts, [4, 2, 5]);
    assert.deepStrictEqual(m.histogram_delta(b, a).counts, [1, 2, 3]);             // went down
    assert.deepStrictEqual(m.histogram_delta(hist([10, 50], [0, 0, 0]), b).counts, [4, 2, 5]);
    assert.strictEqual(m.histogram_delta(a, { le: [10], counts: [1] }), null);     // malformed
    assert.strictEqual(m.histogram_delta(a, undefined), null);
  }],
  ['quantile: linear inside the bucket, the first bucket from 0', () => {
    // 100 samples: 50 in (0,10], 40 in (10,100], 10 in (100,1000].
    const h = hist([10, 100, 1000], [50, 40, 10, 0]);
    close(m.quantile(h, 0.5).value, 10, 'p50');           // the 50th is the last of bucket 0
    close(m.quantile(h, 0.25).value, 5, 'p25');
    close(m.quantile(h, 0.9).value, 100, 'p90');
    close(m.quantile(h, 0.7).value, 10 + 90 * 20 / 40, 'p70');
    close(m.quantile(h, 0.99).value, 100 + 900 * 9 / 10, 'p99');
    assert.strictEqual(m.quantile(h, 0.99).above, false);
  }],
  ['quantile: empty is null; in the open last bucket, the last bound marked above', () => {
    assert.strictEqual(m.quantile(hist([10, 100], [0, 0, 0]), 0.5), null);
    const h = hist([10, 100], [1, 0, 9]);
    assert.deepStrictEqual(m.quantile(h, 0.5), { value: 100, above: true });
    assert.deepStrictEqual(m.quantile(h, 0.1), { value: 10, above: false });
    assert.strictEqual(m.format_us(m.quantile(h, 0.99)), '>100 µs');
  }],
  ['percentiles: from the difference of two snapshots; null without the field', () => {
    const prev = { publish_to_send_us: hist([10, 25, 50, 100], [100, 0, 0, 0, 0]) };
    const cur = { publish_to_send_us: hist([10, 25, 50, 100], [100, 0, 100, 0, 0]) };
    const p = m.percentiles(prev, cur, 'publish_to_send_us');
    close(p.p50.value, 37.5, 'p50');                     // all new samples in (25,50]
    close(p.p99.value, 25 + 25 * 0.99, 'p99');
    assert.strictEqual(m.percentiles(prev, { messages_in: 1 }, 'publish_to_send_us'), null);
    assert.strictEqual(m.format_us(null), '—');
  }],
  ['figures: rates of a part and the forced closes, with the histograms when present', () => {
    const prev = { connections: 3, messages_in: 100, messages_out: 300, dropped: 0, closed: 1,
                   slow_consumer_closes: 0 };
    const cur = { connections: 5, messages_in: 300, messages_out: 900, dropped: 4, closed: 3,
                  slow_consumer_closes: 2, output_budget_closes: 1 };
    const f = m.figures(prev, cur, 2);
    assert.strictEqual(f.connections, 5);
    assert.strictEqual(f.in_per_s, 100);
    assert.strictEqual(f.out_per_s, 300);
    assert.strictEqual(f.dropped_per_s, 2);
    assert.strictEqual(f.closed_per_s, 1);
    assert.strictEqual(f.forced_closes_per_s, 1.5);
    assert.strictEqual(f.latency, null);
  }],
  ['format_number and format_bytes: short text', () => {
    assert.strictEqual(m.format_number(null), '—');
    assert.strictEqual(m.format_number(0), '0');
    assert.strictEqual(m.format_number(2.5), '2.5');
    assert.strictEqual(m.format_number(1234), '1234');
    assert.strictEqual(m.format_number(25300), '25.3k');
    assert.strictEqual(m.format_number(2500000), '2.50M');
    assert.strictEqual(m.format_bytes({ value: 2048, above: false }), '2.0 KiB');
    assert.strictEqual(m.format_us({ value: 1500, above: false }), '1.5 ms');
  }],
];

console.log(`1..${cases.length}`);
let failed = 0;
cases.forEach(([name, fn], i) => {
  try {
    fn();
    console.log(`ok ${i + 1} - ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`not ok ${i + 1} - ${name}`);
    for (const line of String(e && e.stack || e).split('\n')) console.log(`# ${line}`);
  }
});
process.exit(failed ? 1 : 0);
