//! Request heads: found and parsed by httparse, then held to stricter
//! rules than HTTP allows a server to be lenient about, so that a proxy in
//! front and hcc never read one request two ways.
//!
//! Pure functions on bytes; the event loop calls them on what it has read.

/// The largest request head taken; larger ones are refused with 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// More header fields than any browser or proxy sends.
const MAX_HEADERS: usize = 100;

/// A request line and its header fields.
#[derive(Debug, PartialEq)]
pub struct Head {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// Without the `?`.
    pub query: String,
    /// Names as sent; values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
    pub http10: bool,
}

/// Why a head is refused: the status and a line for the client.
pub type Refusal = (u16, &'static str);

/// Header fields a request may carry once only: two `Authorization`
/// headers could be read as different keys by a proxy and by hcc, two
/// `Host`s are refused by RFC 9112 3.2.
const SINGLE: &[&str] = &["authorization", "host"];

/// Whether `buf`, of which the bytes before `from` were already looked at,
/// now holds the empty line that ends a head: worth a parse. Parsing only
/// then keeps a head that trickles in byte by byte from costing a parse
/// per byte.
pub fn may_be_complete(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.saturating_sub(2)..];
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// The head at the start of `buf` and its length in bytes; `None` while it
/// is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            return Err((431, "request head too large\n"));
        }
        Err(httparse::Error::Version) => return Err((505, "HTTP/1.0 and HTTP/1.1 only\n")),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err((400, "bad header line\n"));
        }
        Err(_) => return Err((400, "bad request line\n")),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err((400, "bad request line\n"));
    };
    let mut headers = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        // httparse already refuses NUL, bare CR and the other controls;
        // this states the rule where hcc relies on it.
        if field
            .value
            .iter()
            .any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
        {
            return Err((400, "control character in a header field\n"));
        }
        let Ok(value) = std::str::from_utf8(field.value) else {
            return Err((400, "request head is not UTF-8\n"));
        };
        headers.push((
            field.name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    for name in SINGLE {
        if headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
            > 1
        {
            return Err((400, "a header field that may appear once appears twice\n"));
        }
    }
    // The absolute form (`GET http://host/path`) names the path after the
    // authority.
    let target = match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest.find('/').map_or("/", |at| &rest[at..])
        }
        _ => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Some((
        Head {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            http10: version == 0,
        },
        len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &[u8]) -> u16 {
        match parse(text) {
            Err((status, _)) => status,
            other => panic!("{:?} was taken: {other:?}", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn a_head_is_parsed_once_complete() {
        let text = b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-A:  v \t\r\n\r\nBODY";
        assert_eq!(parse(&text[..20]), Ok(None));
        let (head, len) = parse(text).unwrap().unwrap();
        assert_eq!(&text[len..], b"BODY");
        assert_eq!(head.method, "GET");
        assert_eq!((head.path.as_str(), head.query.as_str()), ("/a/b", "x=1"));
        assert_eq!(head.headers[1], ("X-A".to_string(), "v".to_string()));
        assert!(!head.http10);
        let (head, _) = parse(b"GET http://example.com/p?q HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.path.as_str(), head.query.as_str()), ("/p", "q"));
        assert!(head.http10);
    }

    #[test]
    fn heads_a_proxy_might_read_differently_are_refused() {
        assert_eq!(refused(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(refused(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(refused(b"GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"), 400);
        assert_eq!(
            refused(
                b"GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            400
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        assert_eq!(refused(&big), 431);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: v\r\n")).collect();
        assert_eq!(
            refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
        // A tab inside a value is fine.
        assert!(
            parse(b"GET / HTTP/1.1\r\nX: a\tb\r\n\r\n")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let text = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        assert!(!may_be_complete(&text[..22], 0));
        assert!(may_be_complete(text, 0));
        assert!(may_be_complete(text, text.len() - 1));
        assert!(may_be_complete(text, text.len() - 2));
        assert!(may_be_complete(b"GET / HTTP/1.1\n\n", 15));
        assert!(!may_be_complete(b"GET / HTTP/1.1\r\n", 0));
    }
}
