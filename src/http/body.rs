//! Request bodies as the event loop sees them: how a head frames its body
//! (strictly, so a proxy in front reads it the same way), and where a body
//! ends in the bytes that have arrived so far. The loop holds a connection
//! until its body is complete, so a client sending slowly holds no worker
//! thread; the worker then reads the body from memory with the strict
//! parser of the `exchange` module.

use super::head::{Head, Refusal};

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
}

/// Where the body ends: chunked, or a length (0 without one). Anything a
/// proxy might read differently is refused.
pub fn framing(head: &Head) -> Result<Framing, Refusal> {
    let named = |name: &str| -> Vec<&str> {
        head.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let codings = named("transfer-encoding");
    let lengths = named("content-length");
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err((400, "both Transfer-Encoding and Content-Length\n"));
        }
        if codings.len() > 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err((501, "only the chunked transfer coding is supported\n"));
        }
        return Ok(Framing::Chunked);
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::Length(0));
    };
    let digits = |v: &str| !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit());
    if !lengths.iter().all(|v| digits(v) && v == first) {
        return Err((400, "bad Content-Length\n"));
    }
    first
        .parse::<usize>()
        .map(Framing::Length)
        .map_err(|_| (400, "bad Content-Length\n"))
}

/// Whether the client waits for `100 Continue` before sending its body.
pub fn expects_continue(head: &Head) -> bool {
    head.headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"))
}

/// A framing line longer than this ends the scan (the worker refuses it).
const MAX_LINE: usize = 4 * 1024;

/// Finds the end of a body in bytes that arrive piece by piece, looking at
/// each byte once. It only finds the end: anything unusual ends the scan
/// early, and the worker's strict parser decides.
#[derive(Debug)]
pub struct Scan {
    state: State,
    /// Bytes of the body looked at so far.
    seen: usize,
    /// The length of the current framing line.
    line: usize,
    /// Chunk data so far.
    data: usize,
    max_body: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A body of known length: this many bytes to go.
    Length(usize),
    /// A chunk-size line; its value so far.
    Size(Option<u64>, bool),
    /// Chunk data to skip, then its line end.
    Data(usize),
    DataEnd,
    /// Trailer lines up to an empty one.
    Trailer,
    /// The body ends here (or the worker takes over).
    Done,
}

/// What a scan says after some bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More is to come.
    More,
    /// The body (and what framing it has) ends after this many bytes.
    Complete(usize),
}

impl Scan {
    pub fn new(framing: Framing, max_body: usize) -> Scan {
        Scan {
            state: match framing {
                Framing::Length(n) => State::Length(n),
                Framing::Chunked => State::Size(None, false),
            },
            seen: 0,
            line: 0,
            data: 0,
            max_body,
        }
    }

    /// Looks at the next bytes of the body.
    pub fn feed(&mut self, bytes: &[u8]) -> Progress {
        let mut at = 0;
        while at < bytes.len() || matches!(self.state, State::Length(0)) {
            match self.state {
                State::Done => break,
                State::Length(0) => {
                    self.state = State::Done;
                }
                State::Length(n) => {
                    let take = n.min(bytes.len() - at);
                    at += take;
                    self.state = State::Length(n - take);
                }
                State::Data(0) => self.state = State::DataEnd,
                State::Data(n) => {
                    let take = n.min(bytes.len() - at);
                    at += take;
                    self.state = State::Data(n - take);
                }
                State::Size(value, ended) => {
                    let b = bytes[at];
                    at += 1;
                    self.line += 1;
                    if b == b'\n' {
                        self.line = 0;
                        match value {
                            Some(0) => self.state = State::Trailer,
                            Some(n) if (n as usize) <= self.max_body.saturating_sub(self.data) => {
                                self.data += n as usize;
                                self.state = State::Data(n as usize);
                            }
                            _ => self.state = State::Done,
                        }
                        continue;
                    }
                    let digit = (b as char).to_digit(16);
                    self.state = match (digit, ended) {
                        (Some(d), false) => State::Size(
                            Some(
                                value
                                    .unwrap_or(0)
                                    .saturating_mul(16)
                                    .saturating_add(u64::from(d)),
                            ),
                            false,
                        ),
                        // Extensions, whitespace, CR: not part of the size.
                        (_, _) if value.is_some() => State::Size(value, true),
                        _ => State::Done,
                    };
                }
                State::DataEnd | State::Trailer => {
                    let b = bytes[at];
                    at += 1;
                    if b == b'\n' {
                        let empty = self.line == 0;
                        self.line = 0;
                        self.state = match self.state {
                            State::DataEnd => State::Size(None, false),
                            _ if empty => State::Done,
                            other => other,
                        };
                    } else if b != b'\r' || self.line > 0 {
                        self.line += 1;
                    }
                }
            }
            if self.line > MAX_LINE {
                self.state = State::Done;
            }
        }
        self.seen += at;
        if self.state == State::Done {
            Progress::Complete(self.seen)
        } else {
            Progress::More
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> Head {
        Head {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            http10: false,
        }
    }

    #[test]
    fn framing_is_strict() {
        assert_eq!(framing(&head(&[])), Ok(Framing::Length(0)));
        assert_eq!(
            framing(&head(&[("Content-Length", "5"), ("content-length", "5")])),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing(&head(&[("Transfer-Encoding", "Chunked")])),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(&head(&[("Content-Length", "+5")])).unwrap_err().0,
            400
        );
        assert_eq!(
            framing(&head(&[("Content-Length", "5"), ("Content-Length", "6")]))
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(
            framing(&head(&[
                ("Content-Length", "5"),
                ("Transfer-Encoding", "chunked")
            ]))
            .unwrap_err()
            .0,
            400
        );
        assert_eq!(
            framing(&head(&[("Transfer-Encoding", "gzip")]))
                .unwrap_err()
                .0,
            501
        );
    }

    /// Feeds `text` in pieces of `step` bytes; where the body ended.
    fn scan(framing: Framing, text: &[u8], step: usize) -> Option<usize> {
        let mut scan = Scan::new(framing, 1000);
        for piece in text.chunks(step) {
            if let Progress::Complete(n) = scan.feed(piece) {
                return Some(n);
            }
        }
        None
    }

    #[test]
    fn the_end_of_a_body_is_found_however_it_arrives() {
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(scan(Framing::Length(5), b"abcdeNEXT", step), Some(5));
            assert_eq!(scan(Framing::Length(5), b"abcd", step), None);
            let chunked = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\nNEXT";
            assert_eq!(
                scan(Framing::Chunked, chunked, step),
                Some(chunked.len() - 4)
            );
            let bare = b"3\nabc\n0\n\nNEXT";
            assert_eq!(scan(Framing::Chunked, bare, step), Some(bare.len() - 4));
            assert_eq!(scan(Framing::Chunked, b"3\r\nabc\r\n0\r\n", step), None);
        }
        assert_eq!(
            Scan::new(Framing::Length(0), 10).feed(b""),
            Progress::Complete(0)
        );
        // Anything odd hands the body to the worker's parser at once.
        assert!(scan(Framing::Chunked, b"zz\r\n", 1).is_some());
        assert!(scan(Framing::Chunked, b"ffffffffffffffffff\r\n", 1).is_some());
        assert!(scan(Framing::Chunked, &[b'1'; MAX_LINE + 2], 100).is_some());
    }
}
