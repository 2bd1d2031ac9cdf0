//! The RFB handshake (RFC 6143 7.1) as the broker speaks it: as a client
//! toward the console server, authenticating with its password, and as a
//! server toward the browser, asking for no authentication.
//!
//! Versions: a server that speaks 3.8 or later is answered in 3.8 (what
//! Hetzner's QEMU consoles, TigerVNC and noVNC speak); 3.7 and 3.3 servers
//! and clients are served in their own dialect, whose security steps
//! differ. Everything after the security step (ClientInit, ServerInit and
//! on) is the relay's: passed through unchanged.

use std::io::{self, Read, Write};

use crate::vnc_auth;

/// Security types (RFC 6143 7.1.2).
pub const SECURITY_NONE: u8 = 1;
pub const SECURITY_VNC: u8 = 2;

/// Longest reason text read from a server (a longer one is cut).
const MAX_REASON: u32 = 4096;

/// The dialects the steps differ in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3_3,
    V3_7,
    V3_8,
}

impl Version {
    fn greeting(self) -> &'static [u8; 12] {
        match self {
            Version::V3_3 => b"RFB 003.003\n",
            Version::V3_7 => b"RFB 003.007\n",
            Version::V3_8 => b"RFB 003.008\n",
        }
    }
}

/// Reads a 12-byte version greeting; `None` when it is not one.
fn parse_version(greeting: &[u8; 12]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(greeting).ok()?;
    let rest = text.strip_prefix("RFB ")?.strip_suffix('\n')?;
    let (major, minor) = rest.split_once('.')?;
    if major.len() != 3 || minor.len() != 3 {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// What a failed read means, in words for the session's end reason.
fn read_err(who: &str, step: &str) -> impl Fn(io::Error) -> String {
    move |err| match err.kind() {
        io::ErrorKind::UnexpectedEof => format!("{who} closed the connection during the {step}"),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("{who} did not answer in time during the {step}")
        }
        _ => format!("{who} failed during the {step}: {err}"),
    }
}

fn write_err(who: &str, step: &str) -> impl Fn(io::Error) -> String {
    move |err| format!("cannot write to {who} during the {step}: {err}")
}

fn read_u32(s: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// A reason text (`u32 len` + text), cut at [`MAX_REASON`] and made one
/// printable line.
fn read_reason(s: &mut impl Read) -> io::Result<String> {
    let len = read_u32(s)?;
    let mut text = Vec::new();
    s.take(u64::from(len.min(MAX_REASON)))
        .read_to_end(&mut text)?;
    Ok(String::from_utf8_lossy(&text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string())
}

const SERVER: &str = "the console server";

/// The client side toward a console server, up to a successful
/// SecurityResult: after it the server waits for ClientInit.
pub fn client_handshake(s: &mut (impl Read + Write), password: &str) -> Result<Version, String> {
    let step = "version exchange";
    let mut greeting = [0u8; 12];
    s.read_exact(&mut greeting)
        .map_err(read_err(SERVER, step))?;
    let version = match parse_version(&greeting) {
        Some((3, minor)) if minor >= 8 => Version::V3_8,
        Some((major, _)) if major > 3 => Version::V3_8,
        Some((3, 7)) => Version::V3_7,
        Some((3, _)) => Version::V3_3,
        _ => {
            return Err(format!(
                "{SERVER} does not speak RFB (it began with {:?})",
                String::from_utf8_lossy(&greeting)
            ));
        }
    };
    s.write_all(version.greeting())
        .and_then(|()| s.flush())
        .map_err(write_err(SERVER, step))?;
    let step = "security handshake";
    let read = read_err(SERVER, step);
    let chosen = if version == Version::V3_3 {
        // The server picks: 0 (refused, with a reason), 1 or 2.
        match read_u32(s).map_err(&read)? {
            0 => {
                let why = read_reason(s).map_err(&read)?;
                return Err(format!("{SERVER} refused the connection: {why}"));
            }
            t if t == u32::from(SECURITY_VNC) => SECURITY_VNC,
            t if t == u32::from(SECURITY_NONE) => SECURITY_NONE,
            t => {
                return Err(format!(
                    "{SERVER} asks for security type {t}, not VNC authentication"
                ));
            }
        }
    } else {
        let mut n = [0u8; 1];
        s.read_exact(&mut n).map_err(&read)?;
        if n[0] == 0 {
            let why = read_reason(s).map_err(&read)?;
            return Err(format!("{SERVER} refused the connection: {why}"));
        }
        let mut types = vec![0u8; usize::from(n[0])];
        s.read_exact(&mut types).map_err(&read)?;
        // VNC authentication when offered (the password is what hcc has);
        // None when that is all the server wants.
        let chosen = if types.contains(&SECURITY_VNC) {
            SECURITY_VNC
        } else if types.contains(&SECURITY_NONE) {
            SECURITY_NONE
        } else {
            return Err(format!(
                "{SERVER} offers neither VNC authentication nor none (security types {types:?})"
            ));
        };
        s.write_all(&[chosen])
            .and_then(|()| s.flush())
            .map_err(write_err(SERVER, step))?;
        chosen
    };
    if chosen == SECURITY_VNC {
        let mut challenge = [0u8; vnc_auth::CHALLENGE_LEN];
        s.read_exact(&mut challenge).map_err(&read)?;
        s.write_all(&vnc_auth::response(password, &challenge))
            .and_then(|()| s.flush())
            .map_err(write_err(SERVER, step))?;
    } else if version != Version::V3_8 {
        // 3.3 and 3.7 send no SecurityResult for None.
        return Ok(version);
    }
    match read_u32(s).map_err(&read)? {
        0 => Ok(version),
        _ => {
            let why = if version == Version::V3_8 {
                read_reason(s).unwrap_or_default()
            } else {
                String::new()
            };
            let why = if why.is_empty() {
                "no reason given".into()
            } else {
                why
            };
            Err(format!("{SERVER} refused the console password: {why}"))
        }
    }
}

const CLIENT: &str = "the client";

/// The server side toward a browser or viewer: version 3.8 offered,
/// security None, or VNC authentication with `password` (a viewer beyond
/// this machine, `hcc vnc --allow-remote`), up to the point where
/// ClientInit comes.
pub fn server_handshake(
    s: &mut (impl Read + Write),
    password: Option<&str>,
) -> Result<Version, String> {
    let step = "version exchange";
    s.write_all(Version::V3_8.greeting())
        .and_then(|()| s.flush())
        .map_err(write_err(CLIENT, step))?;
    let mut greeting = [0u8; 12];
    s.read_exact(&mut greeting)
        .map_err(read_err(CLIENT, step))?;
    let version = match parse_version(&greeting) {
        Some((3, 8)) => Version::V3_8,
        Some((3, 7)) => Version::V3_7,
        Some((3, 3)) => Version::V3_3,
        // RFC 6143: a client must not ask for more than the server
        // offered; 3.4 to 3.6 are treated as 3.3, as every server does.
        Some((3, minor)) if (4..=6).contains(&minor) => Version::V3_3,
        _ => {
            return Err(format!(
                "{CLIENT} does not speak RFB 3.3 to 3.8 (it answered {:?})",
                String::from_utf8_lossy(&greeting)
            ));
        }
    };
    let step = "security handshake";
    let write = write_err(CLIENT, step);
    let offered = if password.is_some() {
        SECURITY_VNC
    } else {
        SECURITY_NONE
    };
    if version == Version::V3_3 {
        s.write_all(&u32::from(offered).to_be_bytes())
            .and_then(|()| s.flush())
            .map_err(&write)?;
    } else {
        s.write_all(&[1, offered])
            .and_then(|()| s.flush())
            .map_err(&write)?;
        let mut choice = [0u8; 1];
        s.read_exact(&mut choice).map_err(read_err(CLIENT, step))?;
        if choice[0] != offered {
            refuse(s, version, "that security type was not offered");
            return Err(format!(
                "{CLIENT} chose security type {}, which was not offered",
                choice[0]
            ));
        }
    }
    if let Some(password) = password {
        let mut challenge = [0u8; vnc_auth::CHALLENGE_LEN];
        getrandom::fill(&mut challenge)
            .map_err(|e| format!("cannot get random bytes from the system: {e}"))?;
        s.write_all(&challenge)
            .and_then(|()| s.flush())
            .map_err(&write)?;
        let mut answer = [0u8; vnc_auth::CHALLENGE_LEN];
        s.read_exact(&mut answer).map_err(read_err(CLIENT, step))?;
        if answer != vnc_auth::response(password, &challenge) {
            refuse(s, version, "Authentication failure");
            return Err(format!("{CLIENT} gave a wrong password"));
        }
    } else if version != Version::V3_8 {
        // 3.3 and 3.7 send no SecurityResult for None.
        return Ok(version);
    }
    s.write_all(&0u32.to_be_bytes())
        .and_then(|()| s.flush())
        .map_err(&write)?;
    Ok(version)
}

/// A failed SecurityResult (with its reason in 3.8), best effort: the
/// connection ends after it anyway.
fn refuse(s: &mut impl Write, version: Version, why: &str) {
    let mut answer = 1u32.to_be_bytes().to_vec();
    if version == Version::V3_8 {
        answer.extend_from_slice(&(why.len() as u32).to_be_bytes());
        answer.extend_from_slice(why.as_bytes());
    }
    let _ = s.write_all(&answer).and_then(|()| s.flush());
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A peer whose answers are scripted: reads come from `input`,
    /// writes are collected.
    struct Scripted {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Scripted {
        fn new(input: &[u8]) -> Scripted {
            Scripted {
                input: Cursor::new(input.to_vec()),
                output: Vec::new(),
            }
        }
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const CHALLENGE: [u8; 16] = *b"0123456789abcdef";

    fn server_38(result: &[u8]) -> Vec<u8> {
        let mut script = b"RFB 003.008\n".to_vec();
        script.extend_from_slice(&[2, SECURITY_NONE, SECURITY_VNC]);
        script.extend_from_slice(&CHALLENGE);
        script.extend_from_slice(result);
        script
    }

    #[test]
    fn the_client_picks_vnc_authentication_and_answers_the_challenge() {
        let mut peer = Scripted::new(&server_38(&[0, 0, 0, 0]));
        assert_eq!(client_handshake(&mut peer, "secret12"), Ok(Version::V3_8));
        let mut expected = b"RFB 003.008\n".to_vec();
        expected.push(SECURITY_VNC);
        expected.extend_from_slice(&vnc_auth::response("secret12", &CHALLENGE));
        assert_eq!(peer.output, expected);
    }

    #[test]
    fn a_refused_password_names_the_servers_reason() {
        let mut result = vec![0, 0, 0, 1, 0, 0, 0, 22];
        result.extend_from_slice(b"Authentication failure");
        let mut peer = Scripted::new(&server_38(&result));
        let err = client_handshake(&mut peer, "wrong").unwrap_err();
        assert_eq!(
            err,
            "the console server refused the console password: Authentication failure"
        );
    }

    #[test]
    fn a_refusal_a_close_and_garbage_each_have_a_reason() {
        let refusal = b"RFB 003.008\n\0\0\0\0\x05busy!".to_vec();
        let mut peer = Scripted::new(&refusal);
        assert_eq!(
            client_handshake(&mut peer, "x").unwrap_err(),
            "the console server refused the connection: busy!"
        );
        let mut peer = Scripted::new(&b"RFB 003.008\n\x01"[..]);
        assert_eq!(
            client_handshake(&mut peer, "x").unwrap_err(),
            "the console server closed the connection during the security handshake"
        );
        let mut peer = Scripted::new(b"HTTP/1.1 400 Bad Request\r\n");
        assert!(
            client_handshake(&mut peer, "x")
                .unwrap_err()
                .starts_with("the console server does not speak RFB")
        );
        let mut peer = Scripted::new(b"RFB 003.008\n\x01\x10");
        assert!(
            client_handshake(&mut peer, "x")
                .unwrap_err()
                .contains("offers neither")
        );
        // A reason that claims 4 GiB is read only as far as it goes.
        let mut peer = Scripted::new(b"RFB 003.008\n\0\xff\xff\xff\xffshort");
        assert_eq!(
            client_handshake(&mut peer, "x").unwrap_err(),
            "the console server refused the connection: short"
        );
    }

    #[test]
    fn a_33_server_picks_the_type_itself() {
        let mut script = b"RFB 003.003\n\0\0\0\x02".to_vec();
        script.extend_from_slice(&CHALLENGE);
        script.extend_from_slice(&[0, 0, 0, 0]);
        let mut peer = Scripted::new(&script);
        assert_eq!(client_handshake(&mut peer, "pw"), Ok(Version::V3_3));
        assert_eq!(&peer.output[..12], b"RFB 003.003\n");
        assert_eq!(peer.output.len(), 12 + 16);
    }

    #[test]
    fn the_browser_side_offers_none_and_confirms_it() {
        let mut peer = Scripted::new(b"RFB 003.008\n\x01");
        assert_eq!(server_handshake(&mut peer, None), Ok(Version::V3_8));
        assert_eq!(peer.output, b"RFB 003.008\n\x01\x01\0\0\0\0");
        let mut peer = Scripted::new(b"RFB 003.003\n");
        assert_eq!(server_handshake(&mut peer, None), Ok(Version::V3_3));
        assert_eq!(peer.output, b"RFB 003.008\n\0\0\0\x01");
        let mut peer = Scripted::new(b"RFB 003.007\n\x01");
        assert_eq!(server_handshake(&mut peer, None), Ok(Version::V3_7));
        assert_eq!(peer.output, b"RFB 003.008\n\x01\x01");
    }

    #[test]
    fn a_viewer_must_answer_the_challenge_when_a_password_is_set() {
        // The challenge is random: answer whatever was sent, as a viewer.
        struct Viewer {
            password: &'static str,
            script: Vec<u8>,
            output: Vec<u8>,
        }
        impl Read for Viewer {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.output.len() == 12 + 2 + 16 && self.script.is_empty() {
                    let challenge: [u8; 16] = self.output[14..].try_into().unwrap();
                    self.script = vnc_auth::response(self.password, &challenge).to_vec();
                }
                let n = buf.len().min(self.script.len());
                buf[..n].copy_from_slice(&self.script[..n]);
                self.script.drain(..n);
                Ok(n)
            }
        }
        impl Write for Viewer {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.output.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        for (given, ok) in [("one-off1", true), ("wrong!!!", false)] {
            let mut viewer = Viewer {
                password: given,
                script: b"RFB 003.008\n\x02".to_vec(),
                output: Vec::new(),
            };
            let outcome = server_handshake(&mut viewer, Some("one-off1"));
            assert_eq!(outcome.is_ok(), ok, "{outcome:?}");
            assert_eq!(&viewer.output[12..14], [1, SECURITY_VNC]);
            let result = &viewer.output[30..34];
            assert_eq!(result, if ok { [0, 0, 0, 0] } else { [0, 0, 0, 1] });
        }
    }

    #[test]
    fn the_browser_side_refuses_garbage_and_other_types() {
        let mut peer = Scripted::new(b"GET / HTTP/1.1\r\n");
        assert!(
            server_handshake(&mut peer, None)
                .unwrap_err()
                .starts_with("the client does not speak RFB")
        );
        let mut peer = Scripted::new(b"RFB 003.008\n\x02");
        assert_eq!(
            server_handshake(&mut peer, None).unwrap_err(),
            "the client chose security type 2, which was not offered"
        );
        assert!(peer.output.ends_with(b"that security type was not offered"));
        let mut peer = Scripted::new(b"RFB 0");
        assert_eq!(
            server_handshake(&mut peer, None).unwrap_err(),
            "the client closed the connection during the version exchange"
        );
    }
}
