//! Telemetry ingestion service: POST /api/ingest -> validate -> Kafka topic `data-ingestion`.
//!
//! The article's handler takes `web::Json<IngestionPayload<'_>>`, which does not compile:
//! `Json<T>` needs `T: DeserializeOwned`, so it cannot borrow from the request. Its intent is
//! kept: the body is read as bytes (1 MiB limit) and deserialized borrowing from that buffer
//! (`Cow<str>` falls back to an owned string when the JSON text has escapes); `data` stays a
//! `serde_json::Value` as in the article. The 202 is sent only after Kafka acknowledged the
//! record (awaited delivery, 5 s timeout), as the article's code does. `ACK_MODE=enqueue` (the
//! `rust-enqueue` variant) answers 202 once the record is in librdkafka's queue instead, as the
//! article's Node does (a full queue: 500 at once); its delivery is then only logged on error.
//!
//! The input rules both services share (services/README.md, "Promises"): every answer to a
//! client is JSON, 202 or a 4xx naming the problem; what the 1 MiB limit admits either reaches
//! Kafka or gets a 4xx. Where the article's two programs disagreed on what a client may send,
//! both now follow the article's stated rule; the typed parse stays the fast path, and a body
//! it refuses is looked at once more as a `Value` (off the hot path) so that what Node's
//! `JSON.parse` accepts (duplicate keys, `1.0` as a timestamp) is accepted here too.
//!
//! `INGESTLAB_MEMORY_REPORT_MS=N` (> 0; ours, not the article's) has librdkafka report its
//! statistics every N ms and prints one `ingestlab-memory {...}` line for each (services/README.md,
//! "Memory reports"); unset, empty or 0 changes nothing.

use std::borrow::Cow;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer};
use futures_util::StreamExt;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::{Broker, Statistics};
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TOPIC: &str = "data-ingestion";
/// Same limit as the Node service's `express.json({limit: '1mb'})`: 1 MiB = 1,048,576 bytes.
const BODY_LIMIT_BYTES: usize = 1_048_576;
/// A record published to Kafka may be no larger than a body: re-serializing can lengthen one
/// (`1E2` becomes `100.0`), so the record's own size is checked and refused with 413 beyond it.
const RECORD_LIMIT_BYTES: usize = BODY_LIMIT_BYTES;
/// librdkafka counts a record as its value plus at most 36 bytes of framing
/// (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD) against message.max.bytes; the broker's own limit
/// (infra/kafka/server.properties.template) adds the 61-byte batch header.
const PRODUCER_MESSAGE_MAX_BYTES: usize = RECORD_LIMIT_BYTES + 36;
/// The article's "under 100 characters": Unicode code points (`chars()`), as Node now counts.
const MAX_EVENT_TYPE_CHARS: usize = 100;
/// The article's "valid positive integer", up to 2^53 - 1: the largest integer below which
/// Node's numbers hold every integer, so both services accept the same timestamps.
const MAX_TIMESTAMP: i64 = (1 << 53) - 1;
/// A request whose body has not arrived this long after its head is answered 408 (actix itself
/// gives the head 5 s, its default `client_request_timeout`).
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

const EVENT_TYPE_ERROR: &str =
    "Invalid parameter: 'event_type' must be a non-empty string under 100 characters.";
const TIMESTAMP_ERROR: &str = "Invalid parameter: 'timestamp' must be a valid positive integer.";
const DATA_ERROR: &str = "Invalid parameter: 'data' must be a structural JSON object.";
const INVALID_JSON: &str = "Invalid JSON body.";
/// serde_json's errors that a client can act on, by the start of their message; the rest are
/// `INVALID_JSON`. Its recursion limit (128) admits 127 levels, the top-level object being 1.
const PARSE_PROBLEMS: [(&str, &str); 5] = [
    ("recursion limit exceeded", "Invalid JSON body: nested deeper than 127 levels."),
    ("number out of range", "Invalid JSON body: a number is out of range."),
    ("lone leading surrogate", "Invalid JSON body: a string holds a lone surrogate."),
    ("unexpected end of hex escape", "Invalid JSON body: a string holds a lone surrogate."),
    ("invalid unicode code point", "Invalid JSON body: not valid UTF-8."),
];
const BOM: &[u8] = b"\xEF\xBB\xBF";
const MEMORY_REPORT_PREFIX: &str = "ingestlab-memory ";

/// The default client context, except that librdkafka's statistics (emitted only when
/// `statistics.interval.ms` is set: `INGESTLAB_MEMORY_REPORT_MS`) become memory reports.
struct MemoryReport;

impl ClientContext for MemoryReport {
    /// One line on stdout: the producer queue and its caps, and the requests (and their
    /// messages) waiting to be sent or answered, summed over every broker in the statistics (a
    /// request is held by one broker only, so bootstrap and logical brokers add nothing twice).
    fn stats(&self, stats: Statistics) {
        let sum = |field: fn(&Broker) -> i64| stats.brokers.values().map(field).sum::<i64>();
        let t_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| t.as_millis());
        let report = json!({
            "source": "librdkafka",
            "t_ms": t_ms as u64,
            "pid": std::process::id(),
            "msg_cnt": stats.msg_cnt,
            "msg_size": stats.msg_size,
            "msg_max": stats.msg_max,
            "msg_size_max": stats.msg_size_max,
            "outbuf_cnt": sum(|b| b.outbuf_cnt),
            "outbuf_msg_cnt": sum(|b| b.outbuf_msg_cnt),
            "waitresp_cnt": sum(|b| b.waitresp_cnt),
            "waitresp_msg_cnt": sum(|b| b.waitresp_msg_cnt),
        });
        // One write of the whole line, under stdout's lock.
        let _ = writeln!(std::io::stdout().lock(), "{MEMORY_REPORT_PREFIX}{report}");
    }
}

type IngestProducer = FutureProducer<MemoryReport>;

#[derive(Deserialize, Serialize)]
struct IngestionPayload<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    timestamp: i64,
    data: Value,
}

/// The article's rules, as its error messages state them (services/README.md, "Promises"):
/// `event_type` 1-100 characters, `timestamp` an integer in 1..=2^53-1, `data` an object.
/// A field of the wrong type is `None`.
fn field_problem(event_type: Option<&str>, timestamp: Option<i64>, data: &Value) -> Option<&'static str> {
    // bytes >= chars: count the chars only past the limit
    let event_type_ok = |e: &str| {
        !e.is_empty() && (e.len() <= MAX_EVENT_TYPE_CHARS || e.chars().count() <= MAX_EVENT_TYPE_CHARS)
    };
    if !event_type.is_some_and(event_type_ok) {
        Some(EVENT_TYPE_ERROR)
    } else if !timestamp.is_some_and(|t| (1..=MAX_TIMESTAMP).contains(&t)) {
        Some(TIMESTAMP_ERROR)
    } else if !data.is_object() {
        Some(DATA_ERROR)
    } else {
        None
    }
}

/// What is wrong with the body before any parse: empty, a byte order mark, or not an object
/// (the typed parse would also take `["type", 1, {}]` as the struct's fields in order).
fn shape_problem(body: &[u8]) -> Option<&'static str> {
    match body.iter().find(|b| !b" \t\r\n".contains(b)) {
        _ if body.is_empty() => Some("Invalid JSON body: the body is empty."),
        _ if body.starts_with(BOM) => Some("Invalid JSON body: a byte order mark is not allowed."),
        Some(b'{') => None,
        _ => Some("Invalid JSON body: the body must be a JSON object."),
    }
}

fn parse_problem(err: serde_json::Error) -> &'static str {
    let text = err.to_string();
    PARSE_PROBLEMS
        .iter()
        .find(|(start, _)| text.starts_with(start))
        .map_or(INVALID_JSON, |&(_, message)| message)
}

/// A JSON number as JavaScript's `Number.isSafeInteger` sees it: an integer literal, or a
/// whole double within 2^53 (`1.0`, `1e3`); range checks are `field_problem`'s.
fn whole_number(value: &Value) -> Option<i64> {
    let number = value.as_number()?;
    number.as_i64().or_else(|| {
        let double = number.as_f64()?;
        (double.fract() == 0.0 && double.abs() <= MAX_TIMESTAMP as f64).then_some(double as i64)
    })
}

/// The record to publish for `body`, or the 400 message naming what is wrong.
fn encode_record(body: &[u8]) -> Result<Vec<u8>, &'static str> {
    if let Some(problem) = shape_problem(body) {
        return Err(problem);
    }
    let payload = match serde_json::from_slice::<IngestionPayload>(body) {
        Ok(p) => p,
        Err(_) => return encode_loose(body),
    };
    if let Some(problem) = field_problem(Some(&payload.event_type), Some(payload.timestamp), &payload.data) {
        return Err(problem);
    }
    serde_json::to_vec(&payload).map_err(|_| INVALID_JSON)
}

/// The slow path, for bodies the typed parse refused: parsed as a `Value` (duplicate keys:
/// the last wins, as in JSON.parse) and held to the same rules, so that the message names
/// the field and a timestamp written `1.0` is accepted as Node accepts it.
fn encode_loose(body: &[u8]) -> Result<Vec<u8>, &'static str> {
    let Value::Object(mut doc) = serde_json::from_slice::<Value>(body).map_err(parse_problem)? else {
        return Err(INVALID_JSON); // shape_problem let only objects through
    };
    let event_type = match doc.remove("event_type") {
        Some(Value::String(text)) => Some(text),
        _ => None,
    };
    let timestamp = doc.get("timestamp").and_then(whole_number);
    let data = doc.remove("data").unwrap_or(Value::Null);
    if let Some(problem) = field_problem(event_type.as_deref(), timestamp, &data) {
        return Err(problem);
    }
    let (Some(event_type), Some(timestamp)) = (event_type, timestamp) else {
        return Err(INVALID_JSON); // field_problem refused both Nones
    };
    let payload = IngestionPayload { event_type: Cow::Owned(event_type), timestamp, data };
    serde_json::to_vec(&payload).map_err(|_| INVALID_JSON)
}

fn error_json(mut builder: HttpResponseBuilder, message: &str) -> HttpResponse {
    builder.json(json!({ "error": message }))
}

fn header<'r>(req: &'r HttpRequest, name: actix_web::http::header::HeaderName) -> Option<&'r str> {
    req.headers().get(name).map(|v| v.to_str().unwrap_or(""))
}

/// 415 unless the body is declared `application/json` (charset, if named, utf-8) and sent
/// uncompressed; the Node service applies the same rule.
fn media_type_problem(req: &HttpRequest) -> Option<&'static str> {
    let declared = header(req, CONTENT_TYPE).unwrap_or("");
    let mut parts = declared.split(';');
    if !parts.next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Some("Unsupported Content-Type: send 'application/json'.");
    }
    let charset = parts
        .map(|param| param.split_once('=').unwrap_or((param, "")))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"));
    if charset.is_some_and(|(_, value)| !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")) {
        return Some("Unsupported charset: send UTF-8.");
    }
    if header(req, CONTENT_ENCODING).is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
        return Some("Unsupported Content-Encoding: send the body uncompressed.");
    }
    None
}

/// Reads the body up to `BODY_LIMIT_BYTES`; `Err` carries the ready-made 400/413 response.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::BytesMut, HttpResponse> {
    let too_large = || {
        error_json(HttpResponse::PayloadTooLarge(), "Payload too large: the limit is 1048576 bytes.")
    };
    let declared = header(req, CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8192));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| error_json(HttpResponse::BadRequest(), "Unreadable request body."))?;
        if body.len() + chunk.len() > BODY_LIMIT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The record for this request, or the 4xx answer saying why there is none.
async fn record_for(req: &HttpRequest, payload: web::Payload) -> Result<Vec<u8>, HttpResponse> {
    if let Some(problem) = media_type_problem(req) {
        return Err(error_json(HttpResponse::UnsupportedMediaType(), problem));
    }
    let body = actix_web::rt::time::timeout(BODY_TIMEOUT, read_body(req, payload))
        .await
        .map_err(|_| error_json(HttpResponse::RequestTimeout(), "Request body not received within 5000 ms."))??;
    let record = encode_record(&body).map_err(|problem| error_json(HttpResponse::BadRequest(), problem))?;
    if record.len() > RECORD_LIMIT_BYTES {
        return Err(error_json(
            HttpResponse::PayloadTooLarge(),
            "Payload too large: the record would exceed 1048576 bytes.",
        ));
    }
    Ok(record)
}

/// When a 202 is sent: after Kafka acknowledged the record (the article's Rust), or once it is
/// enqueued in librdkafka's queue (the article's Node).
#[derive(Clone, Copy, PartialEq)]
enum AckMode {
    Acked,
    Enqueue,
}

fn accepted() -> HttpResponse {
    HttpResponse::Accepted().json(json!({ "status": "Accepted" }))
}

fn pipeline_error(err: &dyn std::fmt::Debug) -> HttpResponse {
    log::error!("Transmission to Kafka broker failed: {err:?}");
    error_json(HttpResponse::InternalServerError(), "Internal pipeline error")
}

async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    producer: web::Data<IngestProducer>,
    mode: web::Data<AckMode>,
) -> HttpResponse {
    let encoded = match record_for(&req, payload).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(TOPIC).payload(&encoded);
    if **mode == AckMode::Enqueue {
        return match producer.send_result(record) {
            Ok(delivery) => {
                // Nobody waits for the report; a failed delivery is logged, as Node's is.
                actix_web::rt::spawn(async move {
                    if let Ok(Err((err, _))) = delivery.await {
                        log::error!("Failed to commit message to broker: {err:?}");
                    }
                });
                accepted()
            }
            Err((err, _)) => pipeline_error(&err),
        };
    }
    match producer.send(record, Timeout::After(SEND_TIMEOUT)).await {
        Ok(_) => accepted(),
        Err((err, _)) => pipeline_error(&err),
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::init_from_env(env_logger::Env::new().default_filter_or("info"));

    let brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
    let port: u16 = env_or("PORT", "8080").parse().expect("PORT must be a port number");
    // 0 = actix's default, one worker per core the process may run on.
    let workers: usize = env_or("WORKERS", "0").parse().expect("WORKERS must be a number");
    let mode = match env_or("ACK_MODE", "acked").as_str() {
        "acked" => AckMode::Acked,
        "enqueue" => AckMode::Enqueue,
        other => panic!("ACK_MODE must be acked or enqueue, got {other}"),
    };
    let memory_report_ms: u64 = match env_or("INGESTLAB_MEMORY_REPORT_MS", "").as_str() {
        "" => 0,
        ms => ms.parse().expect("INGESTLAB_MEMORY_REPORT_MS must be a whole number of ms"),
    };

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &brokers)
        .set("client.id", "telemetry-ingestion-rust")
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.ms", "10")
        .set("batch.num.messages", "1000")
        .set("compression.codec", "snappy")
        .set("request.required.acks", "1")
        .set("message.max.bytes", PRODUCER_MESSAGE_MAX_BYTES.to_string());
    if memory_report_ms > 0 {
        config.set("statistics.interval.ms", memory_report_ms.to_string());
    }
    let producer: IngestProducer =
        config.create_with_context(MemoryReport).expect("Failed to initialize Kafka producer");
    let shared = web::Data::new(producer.clone());
    let mode = web::Data::new(mode);

    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(mode.clone())
            .route("/api/ingest", web::post().to(ingest))
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(json!({ "status": "ok" })) }))
            .default_service(web::to(|| async { error_json(HttpResponse::NotFound(), "Not found.") }))
    })
    .shutdown_timeout(10);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server.bind(("127.0.0.1", port))?;
    log::info!("Ingestion microservice running on http://127.0.0.1:{port}");
    // actix handles SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then return.
    server.run().await?;

    log::info!("HTTP server stopped; flushing Kafka producer");
    if let Err(e) = producer.flush(Timeout::After(FLUSH_TIMEOUT)) {
        log::error!("Producer flush failed: {e:?}");
    }
    log::info!("Kafka connection closed. Safe exit.");
    Ok(())
}
