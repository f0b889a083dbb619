/**
 * Telemetry ingestion service (Node.js): POST /api/ingest -> validate -> Kafka `data-ingestion`.
 *
 * Follows the article's code: express.json with a 1 MiB limit, node-rdkafka with the same
 * producer settings, fire-and-forget produce() answered with 202 before Kafka acknowledges
 * (delivery reports are only logged). Additions the article describes in prose but does not
 * show: JSON errors for bad JSON (400) and oversized bodies (413), rejection of
 * __proto__/constructor/prototype keys, a /healthz that is 200 once the producer is connected,
 * and a SIGTERM handler that flushes the producer before exiting. ACK_MODE=acked (the
 * `node-acked` variant) answers 202 only after the delivery report instead (an error: 500), and
 * polls for reports every 5 ms rather than 100 so the wait for one is not the poll interval.
 * The input rules both services
 * share (services/README.md, "Promises"): every answer to a client is JSON, 202 or a 4xx naming
 * the problem; what the 1 MiB limit admits either reaches Kafka or gets a 4xx.
 * INGESTLAB_MEMORY_REPORT_MS=N (> 0; ours, not the article's) prints memory reports every N ms
 * (services/README.md, "Memory reports"); unset, empty or 0 changes nothing.
 */
'use strict';

const { isUtf8 } = require('buffer');
const cluster = require('cluster');
const dns = require('dns');
const http = require('http');
const express = require('express');
const Kafka = require('node-rdkafka');

dns.setDefaultResultOrder('ipv4first');

const PORT = Number(process.env.PORT || 3000);
// enqueue: 202 once produce() queued the record (the article); acked: once Kafka acknowledged it.
const ACK_MODE = process.env.ACK_MODE || 'enqueue';
if (!['enqueue', 'acked'].includes(ACK_MODE)) throw new Error(`ACK_MODE must be enqueue or acked, got ${ACK_MODE}`);
const POLL_INTERVAL_MS = ACK_MODE === 'acked' ? 5 : 100;
const TOPIC = 'data-ingestion';
const FLUSH_TIMEOUT_MS = 10000;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
// The article's 1 MiB body limit (express.json's '1mb' is 1,048,576 bytes). A record published
// to Kafka may be no larger: JSON.stringify can lengthen a body (`1e21` -> `1e+21`), so the
// record's own size is checked before produce() and refused with 413 beyond it.
const BODY_LIMIT_BYTES = 1048576;
const RECORD_LIMIT_BYTES = BODY_LIMIT_BYTES;
// librdkafka counts a record as its value plus at most 36 bytes of framing
// (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD) against message.max.bytes; the broker's own limit
// (infra/kafka/server.properties.template) adds the 61-byte batch header.
const PRODUCER_MESSAGE_MAX_BYTES = RECORD_LIMIT_BYTES + 36;
// The article's messages: "under 100 characters", "a valid positive integer". Characters are
// Unicode code points (what Rust's chars() counts), not UTF-16 code units; timestamps stop at
// 2^53 - 1, above which a JavaScript number no longer holds every integer.
const MAX_EVENT_TYPE_CHARS = 100;
// serde_json's recursion limit: the Rust service parses at most 127 levels (top level = 1).
const MAX_DEPTH = 127;
// A request whose head and body have not arrived within this time is answered 408.
const REQUEST_TIMEOUT_MS = 5000;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
// Memory reports every this many ms (services/README.md, "Memory reports"); 0: none.
const MEMORY_REPORT_ENV = process.env.INGESTLAB_MEMORY_REPORT_MS;
const MEMORY_REPORT_MS = Number(MEMORY_REPORT_ENV || 0);
if (!Number.isInteger(MEMORY_REPORT_MS) || MEMORY_REPORT_MS < 0) {
  throw new Error(`INGESTLAB_MEMORY_REPORT_MS must be a whole number of ms, got ${MEMORY_REPORT_ENV}`);
}
const MEMORY_REPORT_PREFIX = 'ingestlab-memory ';

const producer = new Kafka.Producer({
  'metadata.broker.list': process.env.KAFKA_BROKERS || '127.0.0.1:9092',
  'client.id': 'telemetry-ingestion-node',
  'dr_cb': true,
  'queue.buffering.max.messages': 100000,
  'queue.buffering.max.ms': 10,
  'batch.num.messages': 1000,
  'compression.codec': 'snappy',
  'request.required.acks': 1,
  'message.max.bytes': PRODUCER_MESSAGE_MAX_BYTES,
  ...(MEMORY_REPORT_MS > 0 ? { 'statistics.interval.ms': MEMORY_REPORT_MS } : {}),
});
let producerReady = false;

/** One memory report: one write, so a cluster's workers never interleave inside a line. */
function reportMemory(source, parts) {
  const report = { source, t_ms: Date.now(), pid: process.pid, ...parts };
  process.stdout.write(`${MEMORY_REPORT_PREFIX}${JSON.stringify(report)}\n`);
}

/** librdkafka's producer queue and its caps, and the requests (and their messages) waiting to
 * be sent or answered, summed over every broker in the statistics (a request is held by one
 * broker only, so bootstrap and logical brokers add nothing twice). */
function reportQueue(stats) {
  const brokers = Object.values(stats.brokers || {});
  const sum = (field) => brokers.reduce((total, broker) => total + (broker[field] || 0), 0);
  reportMemory('librdkafka', {
    msg_cnt: stats.msg_cnt,
    msg_size: stats.msg_size,
    msg_max: stats.msg_max,
    msg_size_max: stats.msg_size_max,
    outbuf_cnt: sum('outbuf_cnt'),
    outbuf_msg_cnt: sum('outbuf_msg_cnt'),
    waitresp_cnt: sum('waitresp_cnt'),
    waitresp_msg_cnt: sum('waitresp_msg_cnt'),
  });
}

if (MEMORY_REPORT_MS > 0) {
  producer.on('event.stats', (event) => reportQueue(JSON.parse(event.message)));
  setInterval(() => {
    const usage = process.memoryUsage();
    reportMemory('v8', {
      rss: usage.rss,
      heap_total: usage.heapTotal,
      heap_used: usage.heapUsed,
      external: usage.external,
      array_buffers: usage.arrayBuffers,
    });
  }, MEMORY_REPORT_MS).unref();
}

producer.on('event.error', (err) => {
  console.error('Kafka system-level error occurred:', err.message);
});
// In acked mode each record's opaque is the callback that answers its request.
producer.on('delivery-report', (err, report) => {
  if (err) console.error('Failed to commit message to broker:', err.message);
  if (report && typeof report.opaque === 'function') report.opaque(err);
});
producer.on('ready', () => {
  producerReady = true;
  console.log('Kafka producer ready');
});
// Delivery reports are only emitted while the producer is polled.
producer.setPollInterval(POLL_INTERVAL_MS);
producer.connect();

/** Unicode code points in `text` (a surrogate pair is one). */
function codePointCount(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/**
 * What is wrong anywhere in the parsed document, or null: a forbidden key, nesting deeper than
 * MAX_DEPTH, a string or key holding a lone surrogate (JSON.parse accepts `"\ud800"`; the
 * record would not be valid UTF-8), or a number JSON.parse turned into Infinity (`1e400`,
 * which JSON.stringify would publish as null). Iterative: deep nesting cannot overflow.
 */
function documentProblem(root) {
  const stack = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop();
    if (typeof value === 'string') {
      if (!value.isWellFormed()) return 'Invalid JSON body: a string holds a lone surrogate.';
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) return 'Invalid JSON body: a number is out of range.';
    } else if (value !== null && typeof value === 'object') {
      if (depth > MAX_DEPTH) return `Invalid JSON body: nested deeper than ${MAX_DEPTH} levels.`;
      for (const key of Object.keys(value)) {
        if (FORBIDDEN_KEYS.has(key)) return `Invalid parameter: key '${key}' is not allowed.`;
        if (!key.isWellFormed()) return 'Invalid JSON body: a key holds a lone surrogate.';
        stack.push([value[key], depth + 1]);
      }
    }
  }
  return null;
}

function answerError(res, status, message) {
  return res.status(status).json({ error: message });
}

function reject(res, message) {
  return answerError(res, 400, message);
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function validatePayload(req, res, next) {
  const body = req.body;
  if (!isPlainObject(body)) {
    return reject(res, 'Invalid JSON body: the body must be a JSON object.');
  }
  const { event_type, timestamp, data } = body;

  // `length` counts UTF-16 units, never fewer than code points: count only past the limit.
  if (typeof event_type !== 'string' || event_type.length === 0
      || (event_type.length > MAX_EVENT_TYPE_CHARS && codePointCount(event_type) > MAX_EVENT_TYPE_CHARS)) {
    return reject(res, "Invalid parameter: 'event_type' must be a non-empty string under 100 characters.");
  }
  if (!Number.isSafeInteger(timestamp) || timestamp <= 0) {
    return reject(res, "Invalid parameter: 'timestamp' must be a valid positive integer.");
  }
  if (!isPlainObject(data)) {
    return reject(res, "Invalid parameter: 'data' must be a structural JSON object.");
  }
  const problem = documentProblem(body);
  if (problem !== null) return reject(res, problem);
  next();
}

/** 415 unless the body is declared `application/json` (charset, if named, utf-8). */
function requireJsonType(req, res, next) {
  const [type, ...params] = (req.headers['content-type'] || '').split(';');
  const charset = params
    .map((param) => param.split('='))
    .find(([name]) => name.trim().toLowerCase() === 'charset');
  if (type.trim().toLowerCase() !== 'application/json') {
    return answerError(res, 415, "Unsupported Content-Type: send 'application/json'.");
  }
  if (charset && (charset[1] || '').trim().replace(/^"|"$/g, '').toLowerCase() !== 'utf-8') {
    return answerError(res, 415, 'Unsupported charset: send UTF-8.');
  }
  next();
}

/** The raw body, before JSON.parse: UTF-8 without a byte order mark, and not empty. */
function verifyBytes(req, res, buf) {
  let message = null;
  if (buf.length === 0) message = 'Invalid JSON body: the body is empty.';
  else if (buf.subarray(0, 3).equals(BOM)) message = 'Invalid JSON body: a byte order mark is not allowed.';
  else if (!isUtf8(buf)) message = 'Invalid JSON body: not valid UTF-8.';
  if (message !== null) {
    throw Object.assign(new Error(message), { status: 400, type: 'entity.verify.failed', expose: true });
  }
}

const app = express();
let shuttingDown = false;
/** Once shutting down, each answer ends its keep-alive connection: server.close() waits for
 * every connection, and a client that keeps one busy (an acked answer takes milliseconds, so it
 * is never idle when closeIdleConnections() runs) would otherwise keep it, and the process, open. */
function closeAfter(res) {
  if (shuttingDown) res.set('Connection', 'close');
}
app.use((req, res, next) => {
  closeAfter(res);
  next();
});
app.disable('x-powered-by');
// inflate: false: a compressed body is refused (415), as the Rust service does; its limit
// would otherwise apply to the inflated bytes.
const parseJson = express.json({ limit: BODY_LIMIT_BYTES, inflate: false, verify: verifyBytes });

app.get('/healthz', (req, res) => {
  res.status(producerReady ? 200 : 503).json({ status: producerReady ? 'ok' : 'connecting' });
});

app.post('/api/ingest', requireJsonType, parseJson, validatePayload, (req, res) => {
  try {
    const value = Buffer.from(JSON.stringify(req.body));
    if (value.length > RECORD_LIMIT_BYTES) {
      return answerError(res, 413, `Payload too large: the record would exceed ${RECORD_LIMIT_BYTES} bytes.`);
    }
    if (ACK_MODE === 'enqueue') {
      producer.produce(TOPIC, null, value, null, Date.now());
      return res.status(202).json({ status: 'Accepted' });
    }
    producer.produce(TOPIC, null, value, null, Date.now(), (deliveryErr) => {
      closeAfter(res);
      if (deliveryErr) return res.status(500).json({ error: 'Internal pipeline error' });
      return res.status(202).json({ status: 'Accepted' });
    });
    return undefined;
  } catch (err) {
    // Includes "Local: Queue full" when librdkafka's buffer is at queue.buffering.max.messages.
    console.error('Ingestion production failure:', err.message);
    res.status(500).json({ error: 'Internal pipeline error' });
  }
});

app.use((req, res) => answerError(res, 404, 'Not found.'));

// body-parser's errors become JSON answers naming the problem, never HTML pages or its own
// wording (which names the library's internals).
const BODY_ERRORS = {
  'entity.too.large': [413, `Payload too large: the limit is ${BODY_LIMIT_BYTES} bytes.`],
  'entity.parse.failed': [400, 'Invalid JSON body.'],
  'encoding.unsupported': [415, 'Unsupported Content-Encoding: send the body uncompressed.'],
  'request.size.invalid': [400, 'The body is shorter or longer than its Content-Length.'],
};
app.use((err, req, res, next) => {
  if (err.type === 'request.aborted') return undefined; // the client is gone: nobody to answer
  if (err.type === 'entity.verify.failed') return answerError(res, 400, err.message);
  const known = BODY_ERRORS[err.type];
  if (known) return answerError(res, known[0], known[1]);
  if (err.status && err.status < 500) return answerError(res, 400, 'Bad request.');
  console.error('Unhandled request error:', err.message);
  return answerError(res, 500, 'Internal pipeline error');
});

/** A JSON answer written on the raw socket, for errors Node's HTTP parser meets before Express. */
function rawJsonAnswer(status, message) {
  const body = JSON.stringify({ error: message });
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

// The request timeouts are checked every connectionsCheckingInterval (default 30 s).
const server = http.createServer({
  requestTimeout: REQUEST_TIMEOUT_MS,
  headersTimeout: REQUEST_TIMEOUT_MS,
  connectionsCheckingInterval: 500,
}, app);
// Node's own answers here (a bare 408 or 400 without a body) become JSON ones. As Node's
// default handler, answer only if no response has begun on this socket.
server.on('clientError', (err, socket) => {
  const inFlight = socket._httpMessage;
  if (!socket.writable || (inFlight && inFlight.headersSent)) return socket.destroy();
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return socket.end(rawJsonAnswer(408, `Request not received within ${REQUEST_TIMEOUT_MS} ms.`));
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') return socket.end(rawJsonAnswer(431, 'Request headers too large.'));
  return socket.end(rawJsonAnswer(400, 'Malformed HTTP request.'));
});
function listen() {
  server.listen(PORT, '127.0.0.1', () => {
    console.log(`Ingestion microservice running on http://127.0.0.1:${PORT}`);
    // Anchors --trace-gc's times to wall time. The trace counts from the V8 isolate's start,
    // v8_start_ms after process start: wall = epoch_ms - uptime_ms + v8_start_ms + trace ms.
    const v8Start = performance.nodeTiming.v8Start.toFixed(3);
    console.log(`clock epoch_ms=${Date.now()} uptime_ms=${performance.now().toFixed(3)} v8_start_ms=${v8Start}`);
  });
}
// A cluster worker (cluster.js) takes connections only once its producer is connected: the
// primary hands connections to listening workers only, so none reaches one still connecting.
if (cluster.isWorker) producer.once('ready', listen);
else listen();

function shutdown(signal) {
  shuttingDown = true;
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
