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

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    Transport(reqwest::Error),
    TooLarge { limit: usize },
}

/// The whole body, or `TooLarge` as soon as it passes `limit` bytes.
pub async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
}
