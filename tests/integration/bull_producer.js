// A real BullMQ producer and worker for tests/integration/redis_bridge.py: adds JOBS jobs
// (ids j0, j1, …) to QUEUE under key prefix PREFIX on the Redis at 127.0.0.1:PORT, PACE_MS
// apart, and works each one: updateProgress({pct: 50, n}) then returns {done: n}, so
// BullMQ writes added, waiting, active, progress and completed events to the queue's
// events stream. Prints "done N" when every job has completed; exits 1 on any error.
//
// Usage: node bull_producer.js PORT PREFIX QUEUE JOBS [PACE_MS]
'use strict';
const path = require('path');
const { Queue, Worker } = require(path.join(__dirname, 'node_modules', 'bullmq'));

async function main() {
  const [port, prefix, name, jobsText, paceText] = process.argv.slice(2);
  const jobs = Number(jobsText);
  const pace = Number(paceText || 0);
  const connection = { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection, prefix });
  let completed = 0;
  let finish;
  const allDone = new Promise((resolve) => { finish = resolve; });
  const worker = new Worker(name, async (job) => {
    await job.updateProgress({ pct: 50, n: job.data.n });
    return { done: job.data.n };
  }, { connection, prefix, concurrency: 4 });
  worker.on('completed', () => { if (++completed === jobs) finish(); });
  worker.on('failed', (job, err) => { console.error('failed', job && job.id, err); process.exit(1); });
  for (let n = 0; n < jobs; n++) {
    await queue.add('work', { n }, { jobId: 'j' + n, removeOnComplete: true });
    if (pace > 0) await new Promise((r) => setTimeout(r, pace));
  }
  const timer = setTimeout(() => { console.error(`only ${completed} of ${jobs} completed`); process.exit(1); }, 120000);
  await allDone;
  clearTimeout(timer);
  console.log('done ' + completed);
  await worker.close();
  await queue.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
