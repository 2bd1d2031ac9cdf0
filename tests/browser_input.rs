//! The console page's screen, keys and power buttons in headless Chromium
//! (tests/browser/input.mjs): the whole remote screen fits a laptop's
//! window and panels open over it; the scale choice is remembered; text
//! typed through "Type text", the keys panel, the Ctrl toggle and a touch
//! device's keyboard arrive at a real Xvnc as the key events a person
//! would make (its `xev` log); Power shows only for a link whose key may
//! act, asks first, and queues the command.

use std::time::Duration;

use serde_json::Value;

use crate::support::browser::{browser_ready, node, on_a_real_console, shots};
use crate::support::serve::{Serve, serving};
use crate::test::{Worker, eventually};

const PASSWORD: &str = "k3ys!vnc";

/// A root password a customer might have to type: Shift on and off,
/// punctuation on both layers, a space and Enter.
const TYPED: &str = "Root-Pass_42!@#\"~ x\n";

/// One key event from an `xev -event keyboard` log.
#[derive(Debug)]
struct KeyEvent {
    press: bool,
    keysym: String,
    /// The modifier state before the event (0x1 Shift, 0x4 Control).
    state: u32,
    /// What XLookupString made of it.
    text: String,
}

fn xev_events(log: &str) -> Vec<KeyEvent> {
    log.split("\n\n")
        .filter_map(|block| {
            let block = block.trim_start();
            let press = block.starts_with("KeyPress");
            if !press && !block.starts_with("KeyRelease") {
                return None;
            }
            let after = |marker: &str| block.split_once(marker).map(|(_, rest)| rest);
            let state = after("state 0x")?.split(',').next()?;
            let keysym = after("(keysym 0x")?.split_once(", ")?.1.split(')').next()?;
            let text = after("XLookupString gives ")
                .and_then(|rest| {
                    let hex = rest.split_once('(')?.1.split(')').next()?;
                    let bytes: Vec<u8> = hex
                        .split_whitespace()
                        .filter_map(|h| u8::from_str_radix(h, 16).ok())
                        .collect();
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                })
                .unwrap_or_default();
            Some(KeyEvent {
                press,
                keysym: keysym.to_string(),
                state: u32::from_str_radix(state, 16).ok()?,
                text,
            })
        })
        .collect()
}

/// Whether `wanted` (press?, keysym) appears in `events` in this order;
/// the index after the last one.
fn in_order(events: &[KeyEvent], wanted: &[(bool, &str)]) -> Option<usize> {
    let mut next = wanted.iter().peekable();
    for (i, e) in events.iter().enumerate() {
        let Some((press, keysym)) = next.peek() else {
            return Some(i);
        };
        // Xvnc's keymap names F2 with Ctrl and Alt down XF86Switch_VT_2.
        let vt = keysym
            .strip_prefix('F')
            .is_some_and(|n| e.keysym == format!("XF86Switch_VT_{n}"));
        if e.press == *press && (e.keysym == *keysym || vt) {
            next.next();
        }
    }
    next.peek().is_none().then_some(events.len())
}

fn shifted(ch: char) -> bool {
    ch.is_ascii_uppercase() || "~!@#$%^&*()_+{}|:\"<>?".contains(ch)
}

/// The key of a character of [`TYPED`] on a US keyboard (a DOM `code`).
fn us_code(ch: char) -> String {
    match ch {
        'a'..='z' | 'A'..='Z' => format!("Key{}", ch.to_ascii_uppercase()),
        '0'..='9' => format!("Digit{ch}"),
        '!' => "Digit1".into(),
        '@' => "Digit2".into(),
        '#' => "Digit3".into(),
        '-' | '_' => "Minus".into(),
        '"' => "Quote".into(),
        '~' => "Backquote".into(),
        ' ' => "Space".into(),
        '\n' => "Enter".into(),
        _ => panic!("no US key for {ch:?} in this test"),
    }
}

fn new_link(serve: &Serve, key: &str) -> String {
    let made = serve.post("/api/v1/servers/srv-00001/console-link", key);
    assert_eq!(made.status, 201, "{}", made.body);
    made.json()["url"].as_str().unwrap().to_string()
}

#[test]
fn a_browser_fits_the_screen_types_text_and_sends_the_keys_a_console_needs() {
    let Some((vnc, sim, env, keys)) = on_a_real_console(PASSWORD, &["--servers", "1"]) else {
        return;
    };
    let serve = Serve::start(&env, &sim, &[]);
    let (first, second, touch) = (
        new_link(&serve, &keys.console),
        new_link(&serve, &keys.console),
        new_link(&serve, &keys.console),
    );
    let shot = shots().join("console-input.png");
    let typed = TYPED.replace('\n', "\\n");
    let report: Value = node(
        "input.mjs",
        &[
            "--url",
            &first,
            "--viewport",
            "1280x600",
            "--keys",
            "1",
            "--type",
            &typed,
            "--again",
            &second,
            "--touch",
            &touch,
            "--screenshot",
            shot.to_str().unwrap(),
        ],
        || "the console page's screen and keys".into(),
    );
    // The 1024x768 screen was scaled into the 600 px high window.
    assert_eq!(report["box"]["height"], 768, "{report}");
    assert!(
        report["box"]["bottom"].as_f64().unwrap() <= 600.0,
        "{report}"
    );
    assert_eq!(report["stored"], "0", "{report}");

    // Everything the page sent, as the X server saw it: the keys panel,
    // Ctrl held for `c`, the typed text, the touch keyboard's "ok".
    let want: String = format!("\u{1b}\t\u{3}{}ok", TYPED.replace('\n', "\r"));
    let mut seen = String::new();
    let done = eventually(Duration::from_secs(10), || {
        seen = xev_events(&vnc.xev_text())
            .iter()
            .filter(|e| e.press)
            .map(|e| e.text.as_str())
            .collect();
        seen == want
    });
    assert!(done, "typed {want:?}, the server got {seen:?}");
    let events = xev_events(&vnc.xev_text());
    let (p, r) = (true, false);
    let sequence = [
        (p, "Control_L"),
        (p, "Alt_L"),
        (p, "F2"),
        (r, "F2"),
        (r, "Alt_L"),
        (r, "Control_L"),
        (p, "Escape"),
        (r, "Escape"),
        (p, "Tab"),
        (r, "Tab"),
        (p, "Control_L"),
        (p, "c"),
        (r, "c"),
        (r, "Control_L"),
    ];
    let Some(typing) = in_order(&events, &sequence) else {
        panic!("the keys arrived otherwise: {events:#?}");
    };
    let ctrl_c = events.iter().find(|e| e.press && e.keysym == "c").unwrap();
    assert_eq!(ctrl_c.state & 0x4, 0x4, "c without Control: {ctrl_c:?}");
    // Each typed character with the Shift state a US keyboard needs, and
    // no Shift left down (as many releases as presses).
    let events = &events[typing..];
    let typed_presses: Vec<&KeyEvent> = events
        .iter()
        .filter(|e| e.press && !e.text.is_empty())
        .collect();
    for (ch, e) in TYPED.chars().zip(&typed_presses) {
        assert_eq!(
            e.state & 0x1 == 0x1,
            shifted(ch),
            "{ch:?} arrived with state {:#x}: {e:?}",
            e.state
        );
    }
    let count = |press: bool| {
        events
            .iter()
            .filter(|e| e.press == press && e.keysym.starts_with("Shift"))
            .count()
    };
    assert_eq!(count(true), count(false), "{events:#?}");
    assert_eq!(
        count(true),
        TYPED.chars().filter(|c| shifted(*c)).count(),
        "{events:#?}"
    );

    // The page itself pressed Shift around exactly the characters that
    // need it, with each key's place on a US keyboard (what a server
    // taking scancodes, as Hetzner's QEMU does, acts on).
    let mut want = Vec::new();
    for ch in TYPED.chars() {
        let keysym = if ch == '\n' { 0xff0d } else { ch as u32 };
        let key = |down| serde_json::json!([keysym, us_code(ch), down]);
        if shifted(ch) {
            want.push(serde_json::json!([0xffe1, "ShiftLeft", true]));
        }
        want.extend([key(true), key(false)]);
        if shifted(ch) {
            want.push(serde_json::json!([0xffe1, "ShiftLeft", false]));
        }
    }
    assert_eq!(report["sent"], Value::Array(want), "{report}");

    // (Last: it sends Ctrl-Alt-Del.) The old URL form without a password: the prompt (over the screen,
    // like the other panels) takes it.
    let old = format!("http://{}/l.html?{}", serve.addr, vnc.ws_url());
    let report = node(
        "console.mjs",
        &[
            "--url",
            &old,
            "--password",
            vnc.password(),
            "--expect-colour",
            crate::support::vnc::ROOT_COLOUR,
        ],
        || "l.html's password prompt".into(),
    );
    assert_eq!(report["state"], "connected", "{report}");
}

/// Also: the reboot drops the console (the simulator's, like Hetzner's,
/// goes away while the machine restarts and refuses viewers for the
/// reboot's `--action-ms`), and the page is connected again by itself,
/// without a click; the time from the drop to connected is printed.
#[test]
fn a_browser_shows_power_buttons_only_to_a_link_whose_key_may_act() {
    if !browser_ready() {
        return;
    }
    // The simulator's own console: no Xvnc needed. A reboot takes 2 s,
    // so the page's first attempt (after 1 s) meets a refusal.
    let (sim, env, keys, serve) = serving(&["--servers", "1", "--action-ms", "2000"]);
    let _worker = Worker::start(&env, &sim, "3600");

    let url = new_link(&serve, &keys.console);
    let report = node("input.mjs", &["--url", &url, "--power", "none"], || {
        "a console key's link".into()
    });
    assert_eq!(report["powerShown"], false, "{report}");

    let url = new_link(&serve, &keys.admin);
    let report = node(
        "input.mjs",
        &["--url", &url, "--power", "reboot", "--come-back", "1"],
        || "an admin key's link".into(),
    );
    assert_eq!(
        report["powerVerbs"],
        serde_json::json!(["reboot", "reset", "start"]),
        "{report}"
    );
    assert_eq!(report["question"], "Reboot srv-00001?", "{report}");
    let states = report["powerStates"].as_array().unwrap();
    assert_eq!(states.last().unwrap(), "done", "{report}");
    assert_eq!(report["powerAfterReload"], true, "{report}");

    // Dropped by the reboot and back by itself: connected, left it (never
    // to "ended"), connected again, titled with the server's name.
    let back = &report["comeBack"];
    let states: Vec<&str> = back["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"reconnecting"), "{back}");
    assert!(!states.contains(&"ended"), "{back}");
    assert_eq!(back["title"], "srv-00001 - connected", "{back}");
    let console = sim.control("GET", "/_sim/consoles/srv-00001", None).json();
    assert_eq!(console["stops"], 1, "{console}");
    let steps: Vec<String> = back["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}: {}", e["at"], e["state"], e["status"]))
        .collect();
    eprintln!(
        "console_reboot: dropped by the reboot for {} ms, then connected again without a click; {}",
        back["droppedForMs"],
        steps.join(" | ")
    );
    let queued: Vec<(String, String, String)> = {
        let db = env.db();
        let mut stmt = db
            .prepare("SELECT cmd, arg, state FROM commands ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        queued,
        vec![("reboot".into(), "srv-00001".into(), "done".into())],
        "{report}"
    );
}
