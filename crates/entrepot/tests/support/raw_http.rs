//! HTTP/1.1 byte for byte over a plain TCP connection, for what no client
//! would send (clients normalise paths such as `a/../b`, refuse hostile
//! headers, never race their own chunks).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::server::Entrepot;

/// Send `request` as given on a new connection and read until the server
/// closes it; the whole answer (what arrived before an error included).
pub fn exchange(addr: &str, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// One `METHOD PATH` request without a body (`Connection: close`); the
/// status and the body.
pub fn raw_http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let answer = exchange(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
    );
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status_of(&answer), body)
}

/// The status line and headers of the answer to `request` (sent as given).
pub fn raw_head(addr: &str, request: &str) -> String {
    let text = String::from_utf8_lossy(&exchange(addr, request)).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// A header of a response head, if present (names compare case-insensitively).
pub fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"))
}

/// One HTTP/1.1 answer read off a socket.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header of the answer, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        header_of(&self.head, name)
    }
}

/// Read one response head (status line and headers, up to the blank line)
/// from `stream`, and nothing after it (the answer to a HEAD).
pub fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Read one response (head, then a `Content-Length` body) from `stream`.
pub fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let head = read_head(stream)?;
    let mut answer = Answer {
        status: status_of(&head),
        head,
        body: Vec::new(),
    };
    let len: usize = answer
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    answer.body = vec![0u8; len];
    stream.read_exact(&mut answer.body)?;
    Ok(answer)
}

/// A kept-alive connection speaking raw HTTP/1.1 with the admin's token.
pub struct RawConnection {
    pub stream: TcpStream,
    addr: String,
    auth: String,
}

impl RawConnection {
    /// Connect to `server`.
    pub fn connect(server: &Entrepot) -> RawConnection {
        let stream = TcpStream::connect(&server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        RawConnection {
            stream,
            addr: server.addr.clone(),
            auth: format!("Authorization: Bearer {}\r\n", server.admin_token),
        }
    }

    /// Send a request head announcing `len` body bytes (chunked if `None`);
    /// `extra` holds more header lines, each ending in `\r\n`.
    pub fn head(&mut self, method: &str, path: &str, extra: &str, len: Option<usize>) {
        let length = match len {
            Some(n) => format!("Content-Length: {n}\r\n"),
            None => "Transfer-Encoding: chunked\r\n".to_owned(),
        };
        write!(
            self.stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{}{extra}{length}\r\n",
            self.addr, self.auth
        )
        .unwrap();
    }

    /// Send a whole request and read its answer.
    pub fn send(&mut self, method: &str, path: &str, extra: &str, body: &[u8]) -> Answer {
        self.head(method, path, extra, Some(body.len()));
        self.stream.write_all(body).unwrap();
        read_answer(&mut self.stream).unwrap()
    }
}
