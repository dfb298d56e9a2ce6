//! The command line through a running `tanya serve` on this machine: when the data
//! directory is held by the server, `ingest`, `ask`, `search` and `documents` send their
//! work to it, with the key it left in `<data_dir>/server.json`, instead of failing with
//! "in use by another Tanya process".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tanya::config::Config;
use tanya::server::local::{ServerFile, FILE};
use tanya::Engine;

/// The running server of a data directory, reached over loopback HTTP.
pub struct Remote {
    addr: SocketAddr,
    host: String,
    key: String,
    /// For a server on HTTPS: a client that trusts exactly its certificate.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// The engine of the data directory, or, while `tanya serve` holds it, that server.
pub enum Target {
    Engine(Box<Engine>),
    Server(Remote),
}

/// Opens the engine; when another process holds the data directory and it is a server
/// that left `server.json`, returns that server instead.
pub fn open(config: Config) -> anyhow::Result<Target> {
    let data_dir = config.paths.data_dir.clone();
    let cert = config.tls_files().map(|(cert, _)| cert);
    match Engine::open(config) {
        Ok(engine) => Ok(Target::Engine(Box::new(engine))),
        Err(tanya::Error::Locked(dir)) => match Remote::find(&data_dir, cert.as_deref())? {
            Some(remote) => {
                eprintln!("(the server is running: this goes through it)");
                Ok(Target::Server(remote))
            }
            None => Err(tanya::Error::Locked(dir).into()),
        },
        Err(e) => Err(e.into()),
    }
}

impl Remote {
    /// The server that wrote `<data_dir>/server.json`, if that file is there; `cert` is
    /// `server.tls_cert`, the certificate a server on HTTPS must present.
    pub fn find(data_dir: &Path, cert: Option<&Path>) -> anyhow::Result<Option<Remote>> {
        let file = data_dir.join(FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let s: ServerFile =
            serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
        let (https, rest) = match (
            s.url.strip_prefix("https://"),
            s.url.strip_prefix("http://"),
        ) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => bail!("{}: not an http(s):// address", file.display()),
        };
        let host = rest.trim_end_matches('/').to_string();
        let tls = if https {
            let cert = cert.ok_or_else(|| {
                anyhow!("the server runs HTTPS, but this configuration names no server.tls_cert")
            })?;
            Some(std::sync::Arc::new(tanya::server::tls::pinned_client(
                cert,
            )?))
        } else {
            None
        };
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} resolves to nothing"))?;
        Ok(Some(Remote {
            addr,
            host,
            key: s.key,
            tls,
        }))
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("POST", path, Some(body))
    }

    /// One request; a JSON answer, or the server's error message as the error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))
            .with_context(|| format!("connecting to the server at {}", self.host))?;
        // An ingest of a large folder takes as long as it takes.
        tcp.set_read_timeout(Some(Duration::from_secs(24 * 3600)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Accept: application/json\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host,
            self.key,
            body.len()
        );
        let mut raw = Vec::new();
        match &self.tls {
            None => {
                let mut s = tcp;
                s.write_all(request.as_bytes())?;
                s.read_to_end(&mut raw)?;
            }
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
                let conn = rustls::ClientConnection::new(std::sync::Arc::clone(config), name)?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                s.write_all(request.as_bytes())?;
                // A server may close without a TLS close_notify: what came is the answer.
                match s.read_to_end(&mut raw) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let (status, chunked, payload) = parse_response(&raw)?;
        let payload = if chunked {
            dechunk(payload)?
        } else {
            payload.to_vec()
        };
        let value: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
            let message = format!("the server answered {status}: {message}");
            return Err(if (400..500).contains(&status) {
                tanya::Error::BadRequest(message).into()
            } else {
                anyhow!(message)
            });
        }
        Ok(value)
    }
}

/// Status, whether the body is chunked, and the body of a raw HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, bool, &[u8])> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("the server's answer ended early"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("the server's answer has no status"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((status, chunked, &raw[end + 4..]))
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("a chunk without its size"))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            bail!("the server's answer ended inside a chunk");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_plain_and_chunked() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let (status, chunked, body) = parse_response(raw).unwrap();
        assert_eq!((status, chunked, body), (200, false, &b"{}"[..]));
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        let (status, chunked, body) = parse_response(raw).unwrap();
        assert_eq!((status, chunked), (404, true));
        assert_eq!(dechunk(body).unwrap(), b"{\"a\":1}");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(dechunk(b"5\r\nab").is_err());
    }
}
