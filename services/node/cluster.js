/**
 * The `node-cluster` variant: the article's server.js under Node's `cluster`, one worker process
 * per core this process may run on (the article's own remedy: "running multiple process
 * clusters to utilize modern multi-core systems"). The workers share the listening socket (the
 * primary accepts and hands connections round-robin); each has its own Kafka producer.
 *
 * A worker listens only once its producer connected (server.js), and the primary hands
 * connections to listening workers only: /healthz answers 200 as soon as the first worker is
 * ready, and no request reaches a worker still connecting.
 * SIGTERM/SIGINT go to every worker (each flushes its producer); the primary exits 0 once all
 * exited cleanly, 1 otherwise.
 */
'use strict';

const cluster = require('node:cluster');
const os = require('node:os');

// libuv's count honours the CPU affinity (taskset, a container's cpuset).
const WORKERS = Number(process.env.WORKERS || os.availableParallelism());

if (cluster.isPrimary) {
  cluster.setupPrimary({ exec: `${__dirname}/server.js` });
  let failed = false;
  let stopping = false;
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  console.log(`cluster primary ${process.pid}: ${WORKERS} workers`);
  cluster.on('exit', (worker, code, signal) => {
    console.log(`worker ${worker.process.pid} exited (code ${code}, signal ${signal})`);
    // A worker that dies outside a shutdown is not replaced: a study must see the failure.
    if (code !== 0 || !stopping) failed = true;
    if (Object.keys(cluster.workers).length === 0) process.exit(failed ? 1 : 0);
  });
  const stop = (signal) => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
