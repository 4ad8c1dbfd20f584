//! Reading HTTP answers from outside services with a size limit: a broken or hostile server must
//! not make the controller allocate without bound.

/// Larger than any answer cellnet reads (a neighbour list of thousands of peers is < 4 MiB).
pub const MAX_BODY: usize = 8 << 20;

/// Longest excerpt of another server's answer that cellnet copies into a status or an Event, in
/// characters: enough to tell an error page from an API error, too little to relay a foreign
/// document (whoever may set the URL may point it at any server the controller reaches).
pub const MAX_EXCERPT: usize = 200;

/// `text` on one line (control characters as spaces), at most `max` characters with an ellipsis.
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// Bodies larger than this are read and parsed one at a time, process-wide ([`Body`] holds the
/// turn): up to `--concurrency` reconciles could otherwise each hold a [`MAX_BODY`] answer and
/// its parsed tree at once.
pub const LARGE_BODY: usize = 1 << 20;

/// Most JSON values (objects, arrays, members and elements) an answer may hold before cellnet
/// parses it: a parsed value takes some 32 to 100 bytes whatever its text's size, so a body of
/// `[0,0,0,...]` would grow sixteenfold in memory. A neighbour list of thousands of peers holds a
/// few hundred thousand.
pub const MAX_JSON_VALUES: usize = 1_000_000;

static LARGE_BODIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A body read by [`read_limited`]; a large one holds the process-wide turn for large bodies
/// until dropped, so parse it before dropping it.
#[derive(Debug)]
pub struct Body {
    pub bytes: Vec<u8>,
    _turn: Option<tokio::sync::SemaphorePermit<'static>>,
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Body {
    /// The body as text (invalid UTF-8 replaced), keeping the turn of a large body.
    pub fn into_text(self) -> Text {
        Text {
            text: String::from_utf8_lossy(&self.bytes).into_owned(),
            _turn: self._turn,
        }
    }
}

/// A body as text; a large one holds the turn of large bodies until dropped, like [`Body`].
#[derive(Debug)]
pub struct Text {
    pub text: String,
    _turn: Option<tokio::sync::SemaphorePermit<'static>>,
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

/// `Err` with the reason when `json` holds more than `max` values (counted from its text without
/// parsing: the openings, separators and colons outside strings).
pub fn check_json_values(json: &[u8], max: usize) -> Result<(), String> {
    let (mut values, mut in_string, mut escaped) = (1usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b',' | b':' => values += 1,
            _ => {}
        }
        if values > max {
            return Err(format!(
                "the answer holds more than {max} JSON values, cellnet's limit"
            ));
        }
    }
    Ok(())
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    Transport(reqwest::Error),
    TooLarge { limit: usize },
}

/// The whole body, or `TooLarge` as soon as it passes `limit` bytes. Past [`LARGE_BODY`] bytes
/// (or announced as larger) it waits for the turn of large bodies first.
pub async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Body, BodyError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut turn = None;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if turn.is_none() && body.len() + chunk.len() > LARGE_BODY {
            turn = Some(large_body_turn().await);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body {
        bytes: body,
        _turn: turn,
    })
}

async fn large_body_turn() -> tokio::sync::SemaphorePermit<'static> {
    LARGE_BODIES
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A one-shot HTTP/1.1 server on loopback answering `body`, without a Content-Length when
    /// `chunked` (so only the running count can stop it).
    async fn serve(body: Vec<u8>, chunked: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let head = if chunked {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
            };
            let _ = s.write_all(head.as_bytes()).await;
            if chunked {
                for part in body.chunks(4096) {
                    let _ = s.write_all(format!("{:x}\r\n", part.len()).as_bytes()).await;
                    let _ = s.write_all(part).await;
                    let _ = s.write_all(b"\r\n").await;
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
            } else {
                let _ = s.write_all(&body).await;
            }
        });
        format!("http://{addr}/")
    }

    async fn get(url: &str) -> reqwest::Response {
        crate::tls::install_crypto_provider();
        reqwest::Client::new().get(url).send().await.unwrap()
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt(" a\r\nb\u{1b}[31m ", 50), "a  b [31m");
        let long = excerpt(&"x".repeat(10_000), MAX_EXCERPT);
        assert_eq!(long.chars().count(), MAX_EXCERPT);
        assert!(long.ends_with('…'));
        assert_eq!(
            excerpt(&"é".repeat(MAX_EXCERPT), MAX_EXCERPT).chars().count(),
            MAX_EXCERPT
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_or_without_a_length() {
        for chunked in [false, true] {
            let url = serve(vec![b'x'; 100_000], chunked).await;
            let err = read_limited(get(&url).await, 10_000).await.unwrap_err();
            assert!(
                matches!(err, BodyError::TooLarge { limit: 10_000 }),
                "chunked {chunked}: {err:?}"
            );
            let url = serve(vec![b'y'; 5_000], chunked).await;
            assert_eq!(read_limited(get(&url).await, 10_000).await.unwrap().len(), 5_000);
        }
    }

    #[tokio::test]
    async fn large_bodies_are_read_one_at_a_time() {
        let url = serve(vec![b'x'; LARGE_BODY + 1], true).await;
        let first = read_limited(get(&url).await, MAX_BODY).await.unwrap();
        let url = serve(vec![b'y'; LARGE_BODY + 1], true).await;
        let second =
            tokio::spawn(async move { read_limited(get(&url).await, MAX_BODY).await.unwrap().len() });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "a second large body waits for the first's turn"
        );
        // Small bodies never wait.
        let url = serve(vec![b'z'; 1000], false).await;
        assert_eq!(read_limited(get(&url).await, MAX_BODY).await.unwrap().len(), 1000);
        drop(first);
        assert_eq!(second.await.unwrap(), LARGE_BODY + 1);
    }

    #[test]
    fn json_values_are_counted_outside_strings() {
        assert!(check_json_values(br#"{"a":[1,2,3]}"#, 6).is_ok());
        assert!(check_json_values(br#"{"a":[1,2,3]}"#, 5).is_err());
        // Separators inside strings, escaped quotes included, are text.
        assert!(check_json_values(br#"["a,b:{[\",c"]"#, 2).is_ok());
        let flood = format!("[{}0]", "0,".repeat(2_000));
        let err = check_json_values(flood.as_bytes(), 1_000).unwrap_err();
        assert!(err.contains("more than 1000 JSON values"), "{err}");
    }
}
