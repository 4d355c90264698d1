//! `amq2api healthcheck` (hidden): `GET /health` on the local server within 3 seconds, exit 0 on
//! a 200 and 1 otherwise. For Docker's `HEALTHCHECK`, since slim images have no curl; plain std
//! TCP, because one request needs no HTTP client or runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::HealthcheckArgs;

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let url = args
        .url
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/health", args.port));
    let status =
        status_of(&url, TIMEOUT).with_context(|| format!("health check of {url} failed"))?;
    if status != 200 {
        bail!("health check of {url} failed: HTTP status {status}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The status code of `GET url` (plain `http://host[:port][/path]`), all within `timeout`.
fn status_of(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let deadline = Instant::now() + timeout;
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no answer within {} s", timeout.as_secs_f32());
        }
        Ok(left)
    };
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_owned()
    };
    let mut last_error = None;
    let mut stream = None;
    for addr in with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
    {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let mut stream = match (stream, last_error) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(e).context(format!("cannot connect to {authority}")),
        (None, None) => bail!("{authority} resolves to no address"),
    };
    stream.set_write_timeout(Some(left()?))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: amq2api-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        stream.set_read_timeout(Some(left()?))?;
        let n = stream.read(&mut buf).context("cannot read the answer")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    match line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/") => code
            .parse()
            .with_context(|| format!("not an HTTP answer: {line:?}")),
        _ => bail!("not an HTTP answer: {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server that answers `reply` (or nothing, holding the connection) and returns
    /// the request it read.
    fn serve_once(reply: Option<&'static str>) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            match reply {
                Some(r) => s.write_all(r.as_bytes()).unwrap(),
                None => std::thread::sleep(Duration::from_millis(600)),
            }
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn reads_the_status_code() {
        let (url, h) = serve_once(Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"));
        assert_eq!(status_of(&url, TIMEOUT).unwrap(), 200);
        let req = h.join().unwrap();
        assert!(
            req.starts_with("GET /health HTTP/1.1\r\nHost: 127.0.0.1:"),
            "{req}"
        );
        let (url, h) = serve_once(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert_eq!(status_of(&url, TIMEOUT).unwrap(), 503);
        h.join().unwrap();
    }

    #[test]
    fn silence_is_a_timeout_and_garbage_an_error() {
        let (url, h) = serve_once(None);
        let started = Instant::now();
        let err = status_of(&url, Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500), "{err:#}");
        h.join().unwrap();
        let (url, h) = serve_once(Some("SSH-2.0-OpenSSH\r\n"));
        assert!(format!("{:#}", status_of(&url, TIMEOUT).unwrap_err()).contains("not an HTTP"));
        h.join().unwrap();
    }

    #[test]
    fn only_plain_http() {
        let err = status_of("https://127.0.0.1/health", TIMEOUT).unwrap_err();
        assert!(err.to_string().contains("only http://"));
    }
}
