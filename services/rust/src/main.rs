//! Telemetry ingestion service: POST /api/ingest -> validate -> Kafka topic `data-ingestion`.
//!
//! The article's handler takes `web::Json<IngestionPayload<'_>>`, which does not compile:
//! `Json<T>` needs `T: DeserializeOwned`, so it cannot borrow from the request. Its intent is
//! kept: the body is read as bytes (1 MiB limit) and deserialized borrowing from that buffer
//! (`Cow<str>` falls back to an owned string when the JSON text has escapes); `data` stays a
//! `serde_json::Value` as in the article. The 202 is sent only after Kafka acknowledged the
//! record (awaited delivery, 5 s timeout), as the article's code does.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TOPIC: &str = "data-ingestion";
/// Same limit as the Node service's `express.json({limit: '1mb'})`: 1 MiB = 1,048,576 bytes.
const BODY_LIMIT_BYTES: usize = 1_048_576;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

const EVENT_TYPE_ERROR: &str =
    "Invalid parameter: 'event_type' must be a non-empty string under 100 characters.";
const TIMESTAMP_ERROR: &str = "Invalid parameter: 'timestamp' must be a valid positive integer.";
const DATA_ERROR: &str = "Invalid parameter: 'data' must be a structural JSON object.";

#[derive(Deserialize, Serialize)]
struct IngestionPayload<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    timestamp: i64,
    data: Value,
}

/// The article's Rust rule: non-empty, at most 100 *bytes*, timestamp strictly positive.
/// `data` follows the Node rule (object or array), since the article's Rust code checks nothing
/// and would forward `data: null` (services/README.md lists every difference).
fn validation_error(p: &IngestionPayload) -> Option<&'static str> {
    if p.event_type.is_empty() || p.event_type.len() > 100 {
        Some(EVENT_TYPE_ERROR)
    } else if p.timestamp <= 0 {
        Some(TIMESTAMP_ERROR)
    } else if !(p.data.is_object() || p.data.is_array()) {
        Some(DATA_ERROR)
    } else {
        None
    }
}

/// serde_json's type errors do not name the field, so when the typed parse fails we look at
/// the document once more (off the hot path: only for bodies that are rejected anyway).
fn parse_error_message(body: &[u8]) -> &'static str {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return "Invalid JSON body.";
    };
    let field = |name: &str| doc.get(name);
    if !matches!(field("event_type"), Some(Value::String(_))) {
        EVENT_TYPE_ERROR
    } else if !field("timestamp").is_some_and(|t| t.is_i64() || t.is_u64()) {
        TIMESTAMP_ERROR
    } else {
        DATA_ERROR
    }
}

fn error_json(mut builder: actix_web::HttpResponseBuilder, message: &str) -> HttpResponse {
    builder.json(json!({ "error": message }))
}

/// Reads the body up to `BODY_LIMIT_BYTES`; `Err` carries the ready-made 400/413 response.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::BytesMut, HttpResponse> {
    let too_large = || error_json(HttpResponse::PayloadTooLarge(), "Payload too large.");
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
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

async fn ingest(req: HttpRequest, payload: web::Payload, producer: web::Data<FutureProducer>) -> HttpResponse {
    let body = match read_body(&req, payload).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let parsed: IngestionPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(_) => return error_json(HttpResponse::BadRequest(), parse_error_message(&body)),
    };
    if let Some(message) = validation_error(&parsed) {
        return error_json(HttpResponse::BadRequest(), message);
    }
    let encoded = match serde_json::to_vec(&parsed) {
        Ok(v) => v,
        Err(_) => return error_json(HttpResponse::InternalServerError(), "Internal pipeline error"),
    };
    let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(TOPIC).payload(&encoded);
    match producer.send(record, Timeout::After(SEND_TIMEOUT)).await {
        Ok(_) => HttpResponse::Accepted().json(json!({ "status": "Accepted" })),
        Err((err, _)) => {
            log::error!("Transmission to Kafka broker failed: {err:?}");
            error_json(HttpResponse::InternalServerError(), "Internal pipeline error")
        }
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

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("client.id", "telemetry-ingestion-rust")
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.ms", "10")
        .set("batch.num.messages", "1000")
        .set("compression.codec", "snappy")
        .set("request.required.acks", "1")
        .create()
        .expect("Failed to initialize Kafka producer");
    let shared = web::Data::new(producer.clone());

    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .route("/api/ingest", web::post().to(ingest))
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(json!({ "status": "ok" })) }))
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
