//! `delay-server --port P --delay-us 5000`: answers every request `delay` after its last body
//! byte arrived, with 202 and a 2-byte body; keep-alive; HTTP/1.1 with Content-Length bodies.
//! Listens on 127.0.0.1 only. Prints "listening on 127.0.0.1:P" once it accepts connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const RESPONSE: &[u8] = b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a whole number")))
        .unwrap_or(default)
}

/// Serves one connection until the client closes it; returns on any I/O error.
fn serve(stream: TcpStream, delay: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        // Request line and headers; only Content-Length matters here.
        let mut content_length = 0usize;
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(content_length, 0);
        reader.read_exact(&mut body)?;
        let due = Instant::now() + delay;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        writer.write_all(RESPONSE)?;
    }
}

fn main() -> std::io::Result<()> {
    let port = arg("--port", 0) as u16;
    let delay = Duration::from_micros(arg("--delay-us", 5_000));
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            let _ = serve(stream, delay);
        });
    }
    Ok(())
}
