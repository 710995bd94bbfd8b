// BullMQ against a 3-shard Shoal cluster: 10,000 jobs added in bulk, processed by three
// workers, each job exactly once, and the queue empty at the end. Every BullMQ write is a Lua
// script over hash-tagged keys; workers block on the queue's marker key.
// Usage: node bullmq.js <cluster-seed-port> [jobs]. Prints a summary line; exits non-zero on a
// lost, duplicated or failed job.
'use strict';
const { Queue, Worker, QueueEvents } = require('bullmq');
const { Cluster } = require('ioredis');

const seed = Number(process.argv[2]);
const total = Number(process.argv[3] || 10000);
const prefix = '{shoal-bull}';

function connection() {
  return new Cluster([{ host: '127.0.0.1', port: seed }], {
    maxRedirections: 16,
    redisOptions: { maxRetriesPerRequest: null },
  });
}

(async () => {
  const started = Date.now();
  const queue = new Queue('jobs', { connection: connection(), prefix });
  await queue.obliterate({ force: true }).catch(() => {});
  const seen = new Map();
  let failed = 0;
  const done = new Promise((resolve) => {
    const check = () => {
      if (seen.size >= total) resolve();
    };
    const workers = [1, 2, 3].map(
      (w) =>
        new Worker(
          'jobs',
          async (job) => {
            seen.set(job.data.n, (seen.get(job.data.n) || 0) + 1);
            return job.data.n * 2;
          },
          { connection: connection(), prefix, concurrency: 20, name: `w${w}` },
        ),
    );
    for (const w of workers) {
      w.on('completed', check);
      w.on('failed', (job, err) => {
        failed++;
        console.error('failed', job && job.id, err && err.message);
      });
      w.on('error', (err) => console.error('worker error', err.message));
    }
    globalThis.workers = workers;
  });
  for (let i = 0; i < total; i += 1000) {
    const batch = [];
    for (let n = i; n < Math.min(total, i + 1000); n++) batch.push({ name: 'job', data: { n } });
    await queue.addBulk(batch);
  }
  const timeout = setTimeout(() => {
    console.error(`timed out with ${seen.size} of ${total} processed`);
    process.exit(1);
  }, 240000);
  await done;
  clearTimeout(timeout);
  // Let the last completions reach the server, then read the queue's own counts.
  let counts;
  for (let i = 0; i < 100; i++) {
    counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
    if (counts.completed === total) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const duplicates = [...seen.values()].filter((c) => c > 1).length;
  const missing = total - seen.size;
  for (const w of globalThis.workers) await w.close();
  await queue.close();
  const line = `bullmq: ${total} jobs, ${seen.size} processed, ${duplicates} duplicated, ${missing} missing, ${failed} failed, counts ${JSON.stringify(counts)} in ${Date.now() - started} ms`;
  console.log(line);
  if (duplicates || missing || failed || counts.completed !== total || counts.waiting || counts.active) process.exit(1);
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
