/**
 * Telemetry ingestion service (Node.js): POST /api/ingest -> validate -> Kafka `data-ingestion`.
 *
 * Follows the article's code: express.json with a 1 MiB limit, node-rdkafka with the same
 * producer settings, fire-and-forget produce() answered with 202 before Kafka acknowledges
 * (delivery reports are only logged). Additions the article describes in prose but does not
 * show: JSON errors for bad JSON (400) and oversized bodies (413), rejection of
 * __proto__/constructor/prototype keys, a /healthz that is 200 once the producer is connected,
 * and a SIGTERM handler that flushes the producer before exiting.
 */
'use strict';

const express = require('express');
const Kafka = require('node-rdkafka');
const dns = require('dns');

dns.setDefaultResultOrder('ipv4first');

const PORT = Number(process.env.PORT || 3000);
const TOPIC = 'data-ingestion';
const FLUSH_TIMEOUT_MS = 10000;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const producer = new Kafka.Producer({
  'metadata.broker.list': process.env.KAFKA_BROKERS || '127.0.0.1:9092',
  'client.id': 'telemetry-ingestion-node',
  'dr_cb': true,
  'queue.buffering.max.messages': 100000,
  'queue.buffering.max.ms': 10,
  'batch.num.messages': 1000,
  'compression.codec': 'snappy',
  'request.required.acks': 1,
});
let producerReady = false;

producer.on('event.error', (err) => {
  console.error('Kafka system-level error occurred:', err.message);
});
producer.on('delivery-report', (err) => {
  if (err) console.error('Failed to commit message to broker:', err.message);
});
producer.on('ready', () => {
  producerReady = true;
  console.log('Kafka producer ready');
});
// Delivery reports are only emitted while the producer is polled.
producer.setPollInterval(100);
producer.connect();

/** First forbidden key anywhere in the document, or null. Iterative: deep nesting cannot overflow. */
function findForbiddenKey(root) {
  const stack = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) return key;
      stack.push(value[key]);
    }
  }
  return null;
}

function reject(res, message) {
  return res.status(400).json({ error: message });
}

function validatePayload(req, res, next) {
  const body = req.body || {};
  const { event_type, timestamp, data } = body;

  if (typeof event_type !== 'string' || event_type.length === 0 || event_type.length > 100) {
    return reject(res, "Invalid parameter: 'event_type' must be a non-empty string under 100 characters.");
  }
  if (typeof timestamp !== 'number' || !Number.isInteger(timestamp) || timestamp < 0) {
    return reject(res, "Invalid parameter: 'timestamp' must be a valid positive integer.");
  }
  if (!data || typeof data !== 'object') {
    return reject(res, "Invalid parameter: 'data' must be a structural JSON object.");
  }
  const forbidden = findForbiddenKey(body);
  if (forbidden !== null) {
    return reject(res, `Invalid parameter: key '${forbidden}' is not allowed.`);
  }
  next();
}

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '1mb' }));

app.get('/healthz', (req, res) => {
  res.status(producerReady ? 200 : 503).json({ status: producerReady ? 'ok' : 'connecting' });
});

app.post('/api/ingest', validatePayload, (req, res) => {
  try {
    producer.produce(TOPIC, null, Buffer.from(JSON.stringify(req.body)), null, Date.now());
    res.status(202).json({ status: 'Accepted' });
  } catch (err) {
    // Includes "Local: Queue full" when librdkafka's buffer is at queue.buffering.max.messages.
    console.error('Ingestion production failure:', err.message);
    res.status(500).json({ error: 'Internal pipeline error' });
  }
});

// body-parser errors (bad JSON, too large) become JSON answers instead of HTML pages.
app.use((err, req, res, next) => {
  if (err.type === 'entity.too.large') return res.status(413).json({ error: 'Payload too large.' });
  if (err.type === 'entity.parse.failed') return res.status(400).json({ error: 'Invalid JSON body.' });
  if (err.status && err.status < 500) return res.status(err.status).json({ error: 'Bad request.' });
  console.error('Unhandled request error:', err.message);
  return res.status(500).json({ error: 'Internal pipeline error' });
});

const server = app.listen(PORT, '127.0.0.1', () => {
  console.log(`Ingestion microservice running on http://127.0.0.1:${PORT}`);
  // Anchors --trace-gc's times to wall time. The trace counts from the V8 isolate's start,
  // v8_start_ms after process start: wall = epoch_ms - uptime_ms + v8_start_ms + trace ms.
  const v8Start = performance.nodeTiming.v8Start.toFixed(3);
  console.log(`clock epoch_ms=${Date.now()} uptime_ms=${performance.now().toFixed(3)} v8_start_ms=${v8Start}`);
});

function shutdown(signal) {
  console.log(`${signal} received. Shutting down microservice...`);
  // close() stops accepting; idle keep-alive sockets are closed so it can complete.
  server.close(() => {
    producer.flush(FLUSH_TIMEOUT_MS, (flushErr) => {
      if (flushErr) console.error('Producer flush failed:', flushErr.message);
      producer.disconnect(() => {
        console.log('Kafka connection closed. Safe exit.');
        process.exit(flushErr ? 1 : 0);
      });
    });
  });
  server.closeIdleConnections();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
