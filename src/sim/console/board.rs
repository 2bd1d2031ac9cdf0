//! The consoles' shared state, one per server: what every connection to
//! that server's console reads and changes, and what
//! `GET /_sim/consoles/{id}` shows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::screen;

/// Characters of typed text kept per console; older ones scroll away.
const MAX_TYPED: usize = 4096;

/// One server's console, shared by its connections.
#[derive(Debug, Default)]
pub struct Shared {
    pub name: String,
    /// What the machine booted, shown on the screen.
    pub system: screen::System,
    /// What was typed, Return as `\n`, BackSpace applied.
    pub typed: String,
    /// Connections open now, and those of them past authentication.
    pub clients: u32,
    pub authenticated: u32,
    pub logins: u64,
    pub auth_failures: u64,
    pub key_events: u64,
    pub pointer_events: u64,
    /// Last pointer position and button mask.
    pub pointer: Option<(u16, u16, u8)>,
    pub cut_text: Option<String>,
    pub updates_sent: u64,
    /// Why the last connection ended (`closed by the client`,
    /// `authentication failed`, `a malformed message`, ...).
    pub last_end: Option<&'static str>,
    /// Changes whenever the screen's text does; connections compare it to
    /// know whether a held update request can be answered.
    pub version: u64,
    /// Bumped by a client that asks for the console alone (ClientInit
    /// `shared` = 0): every other connection then ends.
    pub exclusive: u64,
    /// Times the machine behind the console stopped or restarted (a power
    /// action): every connection made before then ends.
    pub stops: u64,
}

impl Shared {
    /// A key pressed: printable characters are echoed, Return starts a
    /// new line, BackSpace takes back the last character of the line.
    pub fn key(&mut self, keysym: u32) {
        self.key_events += 1;
        let before = self.typed.len();
        match keysym {
            0xff0d | 0xff8d => self.typed.push('\n'),
            0xff08 => {
                if self.typed.ends_with(|c| c != '\n') {
                    self.typed.pop();
                }
            }
            _ => {
                if let Some(ch) = keysym_char(keysym) {
                    self.typed.push(ch);
                }
            }
        }
        while self.typed.chars().count() > MAX_TYPED {
            self.typed.remove(0);
        }
        if self.typed.len() != before {
            self.version += 1;
        }
    }

    fn json(&self, server: u64) -> Value {
        let grid = screen::Grid::new(&self.name, &self.system, &self.typed);
        json!({
            "server": server,
            "name": self.name,
            "clients": self.clients,
            "authenticated": self.authenticated,
            "logins": self.logins,
            "auth_failures": self.auth_failures,
            "typed": self.typed,
            "key_events": self.key_events,
            "pointer_events": self.pointer_events,
            "pointer": self.pointer.map(|(x, y, buttons)| json!({"x": x, "y": y, "buttons": buttons})),
            "cut_text": self.cut_text,
            "updates_sent": self.updates_sent,
            "last_end": self.last_end,
            "stops": self.stops,
            "system": match &self.system {
                screen::System::Rescue => "rescue".to_string(),
                screen::System::Os(os) => os.clone(),
            },
            "screen": grid.text_rows(),
            "size": [screen::WIDTH, screen::HEIGHT],
        })
    }
}

/// The character a keysym types, if the console can show it: Latin-1
/// keysyms are their code points, Unicode ones are 0x01000000 + code point.
fn keysym_char(keysym: u32) -> Option<char> {
    let code = match keysym {
        0x20..=0x7e | 0xa0..=0xff => keysym,
        0x0100_0000..=0x0110_ffff => keysym - 0x0100_0000,
        // The keypad's digits.
        0xffb0..=0xffb9 => keysym - 0xffb0 + u32::from(b'0'),
        _ => return None,
    };
    char::from_u32(code).filter(|&c| screen::printable(c))
}

/// Every console that was connected to, by server id.
#[derive(Debug, Default)]
pub struct Consoles {
    by_server: Mutex<HashMap<u64, Arc<Console>>>,
}

#[derive(Debug)]
pub struct Console {
    shared: Mutex<Shared>,
}

impl Console {
    pub fn new(shared: Shared) -> Console {
        Console {
            shared: Mutex::new(shared),
        }
    }

    /// The lock; a panicked connection leaves the console usable.
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's place at a console: the console, and the machine's
/// [`Shared::stops`] when the connection was let in. Taken under the
/// same lock as the server's status is checked and its power actions
/// start, so no connection slips in between a check and a stop.
pub struct Seat {
    pub console: Arc<Console>,
    pub stops: u64,
}

impl Consoles {
    pub fn seat(&self, server: u64, name: &str, system: &screen::System) -> Seat {
        let console = self.get_or_make(server, name, system);
        let stops = console.lock().stops;
        Seat { console, stops }
    }

    /// The machine behind server `server`'s console stops or restarts:
    /// its connections end (within a poll of their loop), as a console
    /// shows nothing once its machine is gone. A console nobody has
    /// connected to has nothing to end.
    pub fn stop(&self, server: u64) {
        let map = self.by_server.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(console) = map.get(&server) {
            console.lock().stops += 1;
        }
    }

    fn get_or_make(&self, server: u64, name: &str, system: &screen::System) -> Arc<Console> {
        let mut map = self.by_server.lock().unwrap_or_else(|e| e.into_inner());
        let console = map
            .entry(server)
            .or_insert_with(|| Arc::new(Console::new(Shared::default())));
        let mut shared = console.lock();
        if shared.name != name {
            // A renamed server shows its new name from the next update.
            shared.name = name.to_string();
            shared.version += 1;
        }
        if shared.system != *system {
            // A machine booted into another system shows it.
            shared.system = system.clone();
            shared.version += 1;
        }
        drop(shared);
        Arc::clone(console)
    }

    /// The state of server `server`'s console for `/_sim/consoles/{id}`:
    /// a fresh one when nobody has connected yet.
    pub fn json(&self, server: u64, name: &str, system: &screen::System) -> Value {
        let map = self.by_server.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&server) {
            Some(console) => {
                let mut shared = console.lock();
                if shared.system != *system {
                    shared.system = system.clone();
                    shared.version += 1;
                }
                shared.json(server)
            }
            None => Shared {
                name: name.to_string(),
                system: system.clone(),
                ..Shared::default()
            }
            .json(server),
        }
    }

    /// Forgets a deleted server's console: its connections end, as a
    /// deleted machine's console shows nothing.
    pub fn forget(&self, server: u64) {
        let mut map = self.by_server.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(console) = map.remove(&server) {
            console.lock().stops += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_type_delete_and_stay_bounded() {
        let mut s = Shared::default();
        for k in [b'r' as u32, b'o' as u32, b'x' as u32, 0xff08, b't' as u32] {
            s.key(k);
        }
        s.key(0xff0d);
        s.key(0x0100_00e9); // é as a Unicode keysym
        s.key(0xffe1); // Shift: nothing typed
        s.key(0xff08);
        s.key(0xff08); // nothing left on the line: the newline stays
        assert_eq!(s.typed, "rot\n");
        assert_eq!(s.key_events, 10);
        for _ in 0..MAX_TYPED + 10 {
            s.key(u32::from(b'a'));
        }
        assert_eq!(s.typed.chars().count(), MAX_TYPED);
    }

    #[test]
    fn a_stop_moves_on_only_that_servers_console() {
        let consoles = Consoles::default();
        // Nobody connected yet: nothing to end, and no console made.
        consoles.stop(1);
        let before = consoles.seat(1, "a", &screen::System::default());
        let other = consoles.seat(2, "b", &screen::System::default());
        assert_eq!(before.stops, 0);
        consoles.stop(1);
        assert_eq!(
            before.console.lock().stops,
            1,
            "the seat's console moved on"
        );
        assert_eq!(other.console.lock().stops, 0);
        // A connection let in after the stop stays.
        assert_eq!(consoles.seat(1, "a", &screen::System::default()).stops, 1);
        assert_eq!(
            consoles.json(1, "a", &screen::System::default())["stops"],
            1
        );
    }
}
