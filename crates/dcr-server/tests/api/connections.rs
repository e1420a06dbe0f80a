//! Connections that send nothing, or stop half-way, cannot hold the server: a connection
//! without a complete request head is closed after `header_read_timeout_seconds` (whatever the
//! protocol, before version detection too), an idle one after `idle_timeout_seconds`, and a
//! well-behaved client is served once that has passed.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_with};

const MAX_CONNECTIONS: usize = 4;
const LIMITS: &str =
    "[limits]\nmax_connections = 4\nheader_read_timeout_seconds = 1\nidle_timeout_seconds = 2\n";
/// Far beyond both timeouts: a client not served by then is not served at all.
const PATIENCE: Duration = Duration::from_secs(15);

/// How a held connection misbehaves.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// Connects and sends nothing.
    Silent,
    /// Sends the first line of the HTTP/2 preface only (version detection waits for more).
    PriLine,
    /// Sends the whole HTTP/2 preface and an empty SETTINGS frame, then nothing.
    H2Preface,
    /// Makes one HTTP/1.1 request, reads the answer, and keeps the connection open.
    KeepAlive,
    /// Makes one HTTP/2 request, reads the answer, and keeps the connection open.
    H2AfterRequest,
}

/// The HTTP/2 client preface followed by an empty SETTINGS frame.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

async fn open(app: &TestApp, kind: Held) -> TcpStream {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    match kind {
        Held::Silent => {}
        Held::PriLine => s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
        Held::H2Preface => s.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap(),
        Held::KeepAlive => {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: dcr.test\r\n\r\n")
                .await
                .unwrap();
            let answer = tokio::time::timeout(PATIENCE, read_response(&mut s))
                .await
                .expect("the keep-alive connection was not served");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        Held::H2AfterRequest => {
            let mut request = H2_PREFACE_AND_SETTINGS.to_vec();
            request.extend_from_slice(&h2_get_healthz());
            s.write_all(&request).await.unwrap();
            tokio::time::timeout(PATIENCE, read_h2_response(&mut s))
                .await
                .expect("the HTTP/2 connection was not served");
        }
    }
    s
}

/// A HEADERS frame (END_STREAM, END_HEADERS) on stream 1 for `GET http://x/healthz`, its
/// header block in HPACK without Huffman coding or indexing.
fn h2_get_healthz() -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http (static table)
    block.extend_from_slice(b"\x04\x08/healthz"); // :path, literal value
    block.extend_from_slice(b"\x01\x01x"); // :authority, literal value
    let len = u8::try_from(block.len()).unwrap();
    let mut frame = vec![0, 0, len, 0x01, 0x05, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    frame
}

/// Reads frames until the server ends stream 1.
async fn read_h2_response(s: &mut TcpStream) {
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await.unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.unwrap();
        let (kind, flags, stream) = (head[3], head[4], head[5..9] == [0, 0, 0, 1]);
        assert_ne!(kind, 0x07, "GOAWAY: {payload:?}");
        assert_ne!(kind, 0x03, "RST_STREAM: {payload:?}");
        if stream && kind <= 0x01 && flags & 0x01 != 0 {
            return;
        }
    }
}

/// Reads one HTTP/1.1 response with a `content-length` body.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the response was complete");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// Holds `n` connections of `kind`, then checks that a well-behaved client is served and that
/// the server closed every held connection (a read sees end of file).
async fn held_connections_do_not_lock_out_clients(kind: Held, n: usize) {
    let app = spawn_with(LIMITS).await;
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(open(&app, kind).await);
    }
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let res = client.get(app.url("/healthz")).send().await;
    assert!(
        res.as_ref().is_ok_and(|r| r.status() == StatusCode::OK),
        "a well-behaved client was not served while {n} {kind:?} connections were held \
         (max_connections = {MAX_CONNECTIONS}): {res:?}"
    );
    for (i, mut s) in held.into_iter().enumerate() {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "held {kind:?} connection {i} was not closed by the server: {read:?}"
        );
    }
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_header_read_timeout() {
    held_connections_do_not_lock_out_clients(Held::Silent, MAX_CONNECTIONS + 2).await;
}

#[tokio::test]
async fn a_partial_http2_preface_is_closed_after_the_header_read_timeout() {
    held_connections_do_not_lock_out_clients(Held::PriLine, MAX_CONNECTIONS + 2).await;
}

#[tokio::test]
async fn an_http2_connection_without_a_request_is_closed_after_the_header_read_timeout() {
    held_connections_do_not_lock_out_clients(Held::H2Preface, MAX_CONNECTIONS + 2).await;
}

/// Only `max_connections` can be idle after a request at once: that already takes every slot.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    held_connections_do_not_lock_out_clients(Held::KeepAlive, MAX_CONNECTIONS).await;
}

#[tokio::test]
async fn idle_http2_connections_are_closed_after_the_idle_timeout() {
    held_connections_do_not_lock_out_clients(Held::H2AfterRequest, MAX_CONNECTIONS).await;
}

/// HTTP/2 PING frames are answered, but they are no request: the idle deadline stands.
#[tokio::test]
async fn http2_pings_do_not_keep_an_idle_connection_open() {
    let app = spawn_with(LIMITS).await;
    let s = open(&app, Held::H2AfterRequest).await;
    let (mut read, mut write) = s.into_split();
    let pinger = tokio::spawn(async move {
        let ping = [0, 0, 8, 0x06, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        while write.write_all(&ping).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // The first answer to a ping (PING with the ACK flag).
    loop {
        let mut head = [0u8; 9];
        read.read_exact(&mut head).await.unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        read.read_exact(&mut payload).await.unwrap();
        if head[3] == 0x06 && head[4] & 0x01 != 0 {
            break;
        }
    }
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, read.read_to_end(&mut rest)).await;
    pinger.abort();
    // A ping still unread by the server when it closes may turn its FIN into a reset.
    assert!(
        matches!(&closed, Ok(Ok(_)))
            || matches!(&closed, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a pinging idle HTTP/2 connection was not closed: {closed:?}"
    );
}

/// The admin listener has the same deadlines: silent connections beyond its `max_connections`
/// neither lock out the authorization server nor stay open.
#[tokio::test]
async fn the_admin_listener_closes_connections_without_requests() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{LIMITS}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{}\"\n",
        "a".repeat(40)
    );
    let config = crate::helpers::test_config(dir.path(), &toml);
    let app = dcr_server::app::Application::build(&config).await.unwrap();
    let admin = app.admin_addr().expect("admin listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 2 {
        held.push(TcpStream::connect(admin).await.unwrap());
    }
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let res = client.get(format!("http://{admin}/healthz")).send().await;
    assert!(
        res.as_ref().is_ok_and(|r| r.status() == StatusCode::OK),
        "the admin listener did not serve while silent connections were held: {res:?}"
    );
    for (i, mut s) in held.into_iter().enumerate() {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "held admin connection {i} was not closed: {read:?}"
        );
    }
    let _ = stop.send(());
    let _ = server.await;
}
