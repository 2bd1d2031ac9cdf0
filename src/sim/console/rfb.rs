//! The RFB 3.8 protocol (RFC 6143) as the simulator's console speaks it:
//! the version exchange, pixel formats, the client's messages parsed from
//! a byte stream (a websocket's frames mean nothing to RFB), and the
//! server's messages. No I/O here.

/// The server's version string, and the one noVNC and TigerVNC answer.
pub const VERSION_3_8: &[u8; 12] = b"RFB 003.008\n";

pub const SECURITY_VNC_AUTH: u8 = 2;

/// The longest ClientCutText kept; the rest is read and dropped, as
/// TigerVNC's `MaxCutText` does.
pub const MAX_CUT_TEXT: usize = 64 * 1024;

/// Protocol versions a client may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V3_3,
    V3_7,
    V3_8,
}

/// The client's 12-byte version. RFC 6143 7.1.1: versions other than 3.7
/// and 3.8 are treated as 3.3; bytes that are not a version at all are an
/// error.
pub fn parse_version(bytes: &[u8]) -> Result<Version, String> {
    let ok = bytes.len() == 12
        && bytes.starts_with(b"RFB ")
        && bytes[7] == b'.'
        && bytes[11] == b'\n'
        && bytes[4..7]
            .iter()
            .chain(&bytes[8..11])
            .all(u8::is_ascii_digit);
    if !ok {
        return Err("not an RFB version string".into());
    }
    Ok(match &bytes[4..11] {
        b"003.008" => Version::V3_8,
        b"003.007" => Version::V3_7,
        _ => Version::V3_3,
    })
}

/// PIXEL_FORMAT: how the client wants pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub max: [u16; 3],
    pub shift: [u8; 3],
}

impl PixelFormat {
    /// What the server announces: 32 bpp, depth 24, little-endian, red in
    /// bits 16-23 (TigerVNC's and QEMU's default).
    pub const SERVER: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        max: [255, 255, 255],
        shift: [16, 8, 0],
    };

    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0] = self.bits_per_pixel;
        out[1] = self.depth;
        out[2] = u8::from(self.big_endian);
        out[3] = u8::from(self.true_colour);
        for i in 0..3 {
            out[4 + 2 * i..6 + 2 * i].copy_from_slice(&self.max[i].to_be_bytes());
            out[10 + i] = self.shift[i];
        }
        out
    }

    /// A PIXEL_FORMAT the client sent; 8, 16 or 32 bits per pixel (the
    /// only sizes RFC 6143 allows), true colour or a colour map.
    pub fn decode(b: &[u8; 16]) -> Result<PixelFormat, String> {
        let format = PixelFormat {
            bits_per_pixel: b[0],
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour: b[3] != 0,
            max: [
                u16::from_be_bytes([b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]]),
                u16::from_be_bytes([b[8], b[9]]),
            ],
            shift: [b[10], b[11], b[12]],
        };
        if ![8, 16, 32].contains(&format.bits_per_pixel) {
            return Err(format!(
                "{} bits per pixel (want 8, 16 or 32)",
                format.bits_per_pixel
            ));
        }
        if format.true_colour && format.shift.iter().any(|&s| s >= format.bits_per_pixel) {
            return Err("a colour shift beyond the pixel".into());
        }
        Ok(format)
    }

    /// The bytes of one pixel: colour `rgb` in true colour, else entry
    /// `index` of the colour map (see [`colour_map`]).
    pub fn pixel(&self, rgb: [u8; 3], index: u8) -> Vec<u8> {
        let value: u32 = if self.true_colour {
            (0..3)
                .map(|i| {
                    let c = (u32::from(rgb[i]) * u32::from(self.max[i]) + 127) / 255;
                    c << self.shift[i]
                })
                .fold(0, |a, c| a | c)
        } else {
            u32::from(index)
        };
        match (self.bits_per_pixel, self.big_endian) {
            (8, _) => vec![value as u8],
            (16, false) => (value as u16).to_le_bytes().to_vec(),
            (16, true) => (value as u16).to_be_bytes().to_vec(),
            (_, false) => value.to_le_bytes().to_vec(),
            (_, true) => value.to_be_bytes().to_vec(),
        }
    }
}

/// SetColourMapEntries for a client without true colour: the palette as
/// entries 0.. of its colour map.
pub fn colour_map(palette: &[[u8; 3]]) -> Vec<u8> {
    let mut out = vec![1, 0, 0, 0];
    out.extend_from_slice(&(palette.len() as u16).to_be_bytes());
    for rgb in palette {
        for c in rgb {
            // 8-bit to 16-bit: 0xab becomes 0xabab.
            out.extend_from_slice(&(u16::from(*c) * 257).to_be_bytes());
        }
    }
    out
}

/// ServerInit: size, pixel format, desktop name.
pub fn server_init(width: u16, height: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + name.len());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&PixelFormat::SERVER.encode());
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// SecurityResult: 0 OK; a failure carries its reason from 3.8 on.
pub fn security_result(ok: bool, reason: &str, version: Version) -> Vec<u8> {
    let mut out = u32::from(!ok).to_be_bytes().to_vec();
    if !ok && version >= Version::V3_8 {
        out.extend_from_slice(&(reason.len() as u32).to_be_bytes());
        out.extend_from_slice(reason.as_bytes());
    }
    out
}

/// A rectangle of the screen, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Rect {
    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    fn right(&self) -> u32 {
        u32::from(self.x) + u32::from(self.w)
    }

    fn bottom(&self) -> u32 {
        u32::from(self.y) + u32::from(self.h)
    }

    /// The common part of two rectangles (empty when they do not meet).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        Rect {
            x,
            y,
            w: right.saturating_sub(u32::from(x)) as u16,
            h: bottom.saturating_sub(u32::from(y)) as u16,
        }
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = self.right().max(other.right());
        let bottom = self.bottom().max(other.bottom());
        Rect {
            x,
            y,
            w: (right - u32::from(x)).min(u32::from(u16::MAX)) as u16,
            h: (bottom - u32::from(y)).min(u32::from(u16::MAX)) as u16,
        }
    }

    /// The header of a Raw-encoded rectangle in a FramebufferUpdate.
    pub fn raw_header(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[0..2].copy_from_slice(&self.x.to_be_bytes());
        out[2..4].copy_from_slice(&self.y.to_be_bytes());
        out[4..6].copy_from_slice(&self.w.to_be_bytes());
        out[6..8].copy_from_slice(&self.h.to_be_bytes());
        // Bytes 8..12: encoding 0, Raw.
        out
    }
}

/// The start of a FramebufferUpdate of `rects` rectangles.
pub fn update_header(rects: u16) -> [u8; 4] {
    let n = rects.to_be_bytes();
    [0, 0, n[0], n[1]]
}

/// A message from the client, after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    SetPixelFormat(PixelFormat),
    /// The encodings the client listed (pseudo-encodings included).
    SetEncodings(Vec<i32>),
    UpdateRequest {
        incremental: bool,
        rect: Rect,
    },
    Key {
        down: bool,
        keysym: u32,
    },
    Pointer {
        buttons: u8,
        x: u16,
        y: u16,
    },
    /// Latin-1 text, cut at [`MAX_CUT_TEXT`] bytes.
    CutText(String),
}

/// Client messages from a byte stream: feed it what arrives, take the
/// messages that are complete. It holds at most one message in progress
/// (SetEncodings at most 256 KiB, a cut text at most [`MAX_CUT_TEXT`]
/// kept), however the client sends.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// Bytes of an overlong cut text still to drop.
    skip: usize,
}

impl Parser {
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `None` until one is; an unknown message
    /// type or a bad field is an error that ends the connection (RFB
    /// messages carry no length, so there is no skipping them).
    pub fn next(&mut self) -> Result<Option<ClientMsg>, String> {
        if self.skip > 0 {
            return Ok(None);
        }
        let b = &self.buf;
        let Some(&kind) = b.first() else {
            return Ok(None);
        };
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let (len, msg) = match kind {
            0 => {
                if b.len() < 20 {
                    return Ok(None);
                }
                let mut raw = [0u8; 16];
                raw.copy_from_slice(&b[4..20]);
                (20, ClientMsg::SetPixelFormat(PixelFormat::decode(&raw)?))
            }
            2 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                let len = 4 + 4 * usize::from(u16_at(2));
                if b.len() < len {
                    return Ok(None);
                }
                let encodings = b[4..len]
                    .chunks_exact(4)
                    .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                (len, ClientMsg::SetEncodings(encodings))
            }
            3 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let rect = Rect {
                    x: u16_at(2),
                    y: u16_at(4),
                    w: u16_at(6),
                    h: u16_at(8),
                };
                let incremental = b[1] != 0;
                (10, ClientMsg::UpdateRequest { incremental, rect })
            }
            4 => {
                if b.len() < 8 {
                    return Ok(None);
                }
                let keysym = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                (
                    8,
                    ClientMsg::Key {
                        down: b[1] != 0,
                        keysym,
                    },
                )
            }
            5 => {
                if b.len() < 6 {
                    return Ok(None);
                }
                let msg = ClientMsg::Pointer {
                    buttons: b[1],
                    x: u16_at(2),
                    y: u16_at(4),
                };
                (6, msg)
            }
            6 => {
                if b.len() < 8 {
                    return Ok(None);
                }
                let text_len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
                let kept = text_len.min(MAX_CUT_TEXT);
                if b.len() < 8 + kept {
                    return Ok(None);
                }
                // Latin-1: each byte is the code point of the same value.
                let text = b[8..8 + kept].iter().map(|&c| char::from(c)).collect();
                self.skip = text_len - kept;
                let len = 8 + kept;
                // Whatever followed in the buffer belongs to the dropped part
                // first.
                let after = self.buf.split_off(len);
                self.buf.clear();
                let n = self.skip.min(after.len());
                self.skip -= n;
                self.buf.extend_from_slice(&after[n..]);
                return Ok(Some(ClientMsg::CutText(text)));
            }
            other => return Err(format!("unknown message type {other}")),
        };
        self.buf.drain(..len);
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version(b"RFB 003.008\n"), Ok(Version::V3_8));
        assert_eq!(parse_version(b"RFB 003.007\n"), Ok(Version::V3_7));
        assert_eq!(parse_version(b"RFB 003.003\n"), Ok(Version::V3_3));
        // Apple's 3.889 is treated as 3.3, as the RFC says.
        assert_eq!(parse_version(b"RFB 003.889\n"), Ok(Version::V3_3));
        assert!(parse_version(b"GET / HTTP/1").is_err());
        assert!(parse_version(b"RFB 003.008").is_err());
    }

    #[test]
    fn pixel_formats_round_trip_and_encode() {
        let server = PixelFormat::SERVER;
        assert_eq!(PixelFormat::decode(&server.encode()), Ok(server));
        assert_eq!(server.pixel([0x11, 0x22, 0x33], 0), [0x33, 0x22, 0x11, 0]);
        // noVNC's: shifts 0/8/16, little-endian.
        let novnc = PixelFormat {
            shift: [0, 8, 16],
            ..server
        };
        assert_eq!(novnc.pixel([0x11, 0x22, 0x33], 0), [0x11, 0x22, 0x33, 0]);
        let big = PixelFormat {
            big_endian: true,
            ..server
        };
        assert_eq!(big.pixel([0x11, 0x22, 0x33], 0), [0, 0x11, 0x22, 0x33]);
        // RGB565, little-endian: white is 0xffff, pure red 0xf800.
        let rgb565 = PixelFormat {
            bits_per_pixel: 16,
            depth: 16,
            big_endian: false,
            true_colour: true,
            max: [31, 63, 31],
            shift: [11, 5, 0],
        };
        assert_eq!(rgb565.pixel([255, 255, 255], 0), [0xff, 0xff]);
        assert_eq!(rgb565.pixel([255, 0, 0], 0), [0x00, 0xf8]);
        let mapped = PixelFormat {
            bits_per_pixel: 8,
            depth: 8,
            true_colour: false,
            ..server
        };
        assert_eq!(mapped.pixel([1, 2, 3], 3), [3]);
        let mut bad = server.encode();
        bad[0] = 24;
        assert!(PixelFormat::decode(&bad).is_err());
        bad[0] = 16;
        assert!(PixelFormat::decode(&bad).is_err(), "shift 16 in 16 bits");
    }

    #[test]
    fn messages_across_any_split() {
        let mut stream = vec![0u8, 0, 0, 0];
        stream.extend_from_slice(&PixelFormat::SERVER.encode());
        stream.extend_from_slice(&[2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21]);
        stream.extend_from_slice(&[3, 1, 0, 0, 0, 0, 2, 128, 1, 144]);
        stream.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0, b'a']);
        stream.extend_from_slice(&[5, 1, 0, 10, 0, 20]);
        stream.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 2, b'h', 0xe9]);
        let want = vec![
            ClientMsg::SetPixelFormat(PixelFormat::SERVER),
            ClientMsg::SetEncodings(vec![0, -223]),
            ClientMsg::UpdateRequest {
                incremental: true,
                rect: Rect {
                    x: 0,
                    y: 0,
                    w: 640,
                    h: 400,
                },
            },
            ClientMsg::Key {
                down: true,
                keysym: 0x61,
            },
            ClientMsg::Pointer {
                buttons: 1,
                x: 10,
                y: 20,
            },
            ClientMsg::CutText("hé".into()),
        ];
        for step in [1, 3, 7, stream.len()] {
            let mut parser = Parser::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                parser.feed(chunk);
                while let Some(msg) = parser.next().unwrap() {
                    got.push(msg);
                }
            }
            assert_eq!(got, want, "in chunks of {step}");
        }
    }

    #[test]
    fn an_overlong_cut_text_is_cut_and_the_stream_goes_on() {
        let len = MAX_CUT_TEXT + 1000;
        let mut stream = vec![6u8, 0, 0, 0];
        stream.extend_from_slice(&(len as u32).to_be_bytes());
        stream.extend(std::iter::repeat_n(b'x', len));
        stream.extend_from_slice(&[5, 0, 0, 1, 0, 2]);
        for step in [999, 70_000, stream.len()] {
            let mut parser = Parser::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                parser.feed(chunk);
                while let Some(msg) = parser.next().unwrap() {
                    got.push(msg);
                }
            }
            assert_eq!(got.len(), 2, "in chunks of {step}");
            assert!(matches!(&got[0], ClientMsg::CutText(t) if t.len() == MAX_CUT_TEXT));
            assert_eq!(
                got[1],
                ClientMsg::Pointer {
                    buttons: 0,
                    x: 1,
                    y: 2
                }
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut parser = Parser::default();
        parser.feed(b"GET / HTTP/1.1\r\n");
        assert!(parser.next().is_err());
        let mut parser = Parser::default();
        parser.feed(&[
            0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        ]);
        assert!(parser.next().is_err());
    }

    #[test]
    fn rects_meet_and_join() {
        let a = Rect {
            x: 0,
            y: 0,
            w: 10,
            h: 10,
        };
        let b = Rect {
            x: 5,
            y: 5,
            w: 10,
            h: 10,
        };
        assert_eq!(
            a.intersect(&b),
            Rect {
                x: 5,
                y: 5,
                w: 5,
                h: 5
            }
        );
        assert_eq!(
            a.union(&b),
            Rect {
                x: 0,
                y: 0,
                w: 15,
                h: 15
            }
        );
        let far = Rect {
            x: 100,
            y: 100,
            w: 1,
            h: 1,
        };
        assert!(a.intersect(&far).is_empty());
        let huge = Rect {
            x: 65535,
            y: 65535,
            w: 65535,
            h: 65535,
        };
        assert!(!huge.union(&a).is_empty());
    }

    #[test]
    fn security_results() {
        assert_eq!(security_result(true, "", Version::V3_8), [0, 0, 0, 0]);
        assert_eq!(security_result(false, "no", Version::V3_7), [0, 0, 0, 1]);
        assert_eq!(
            security_result(false, "no", Version::V3_8),
            [0, 0, 0, 1, 0, 0, 0, 2, b'n', b'o']
        );
    }
}
