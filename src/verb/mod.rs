//! The command vocabulary shared by the CLI, the spool, the `commands` table
//! and the HTTP API (`hcc serve`), and the validation of a queued command
//! line.
//!
//! A queued command is `CMD ARG...`: the verb as written (aliases such as
//! `off` and `new` stay as the panel wrote them, so consumers written for
//! the original tool still recognise them) and its arguments joined by one
//! space. Validation happens before anything is queued, so a consumer only
//! ever sees lines it can act on.

mod manage;

use std::fmt;

pub use manage::{Clearance, DEFAULT_RESCUE, KEEP_DISK, Manage, ManageVerb};

/// Every verb hcc knows; aliases map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Sync,
    Power(Power),
    Console,
    Create,
    Kill,
    SetTag,
    DelTag,
    Notify,
    /// A client-area verb (`rebuild`, `reset-password`, ...).
    Manage(ManageVerb),
}

/// The power verbs, each a Hetzner server action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Start,
    Stop,
    Force,
    Reboot,
    Reset,
}

impl Power {
    /// The Hetzner action (`POST /servers/{id}/actions/{action}`).
    pub fn action(self) -> &'static str {
        match self {
            Power::Start => "poweron",
            Power::Stop => "shutdown",
            Power::Force => "poweroff",
            Power::Reboot => "reboot",
            Power::Reset => "reset",
        }
    }
}

/// What a validated command line means: the verb and its typed arguments.
/// Parsed once where a command enters (CLI, spool, `commands` table, API),
/// so whoever runs it never splits strings again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `sync` (every server) or `sync NAME`.
    Sync(Option<String>),
    Power(Power, String),
    Console(String),
    Create(NewServer),
    Kill(String),
    SetTag(String),
    DelTag(String),
    /// `notify MSG`.
    Notify(String),
    /// A client-area verb on server NAME.
    Manage(String, Manage),
}

/// `create NAME [TYPE [IMAGE [LOCATION]]]`: what is not given comes from
/// the settings when the server is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServer {
    pub name: String,
    pub server_type: Option<String>,
    pub image: Option<String>,
    pub location: Option<String>,
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Command::Sync(_) => Verb::Sync,
            Command::Power(power, _) => Verb::Power(*power),
            Command::Console(_) => Verb::Console,
            Command::Create(_) => Verb::Create,
            Command::Kill(_) => Verb::Kill,
            Command::SetTag(_) => Verb::SetTag,
            Command::DelTag(_) => Verb::DelTag,
            Command::Notify(_) => Verb::Notify,
            Command::Manage(_, manage) => Verb::Manage(manage.verb()),
        }
    }

    /// The server the command is about; `None` for a full `sync` and
    /// `notify`.
    pub fn server(&self) -> Option<&str> {
        match self {
            Command::Sync(name) => name.as_deref(),
            Command::Power(_, name)
            | Command::Console(name)
            | Command::Kill(name)
            | Command::SetTag(name)
            | Command::DelTag(name)
            | Command::Manage(name, _) => Some(name),
            Command::Create(new) => Some(&new.name),
            Command::Notify(_) => None,
        }
    }
}

/// The words a verb accepts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// An optional server name (`sync`, `sync NAME`).
    OptionalName,
    /// Exactly one server name.
    Name,
    /// A server name followed by up to three optional words
    /// (`create NAME [TYPE [IMAGE [LOCATION]]]`).
    NameAndOptions,
    /// Free text (`notify MSG`).
    Message,
    /// A server name and the words of a client-area verb
    /// ([`ManageVerb::parse`]).
    Manage,
}

/// (word, verb) for every accepted spelling, canonical names first.
const SPELLINGS: &[(&str, Verb)] = &[
    ("sync", Verb::Sync),
    ("start", Verb::Power(Power::Start)),
    ("stop", Verb::Power(Power::Stop)),
    ("force", Verb::Power(Power::Force)),
    ("reboot", Verb::Power(Power::Reboot)),
    ("reset", Verb::Power(Power::Reset)),
    ("console", Verb::Console),
    ("create", Verb::Create),
    ("kill", Verb::Kill),
    ("settag", Verb::SetTag),
    ("deltag", Verb::DelTag),
    ("notify", Verb::Notify),
    ("rebuild", Verb::Manage(ManageVerb::Rebuild)),
    ("reset-password", Verb::Manage(ManageVerb::ResetPassword)),
    ("enable-rescue", Verb::Manage(ManageVerb::EnableRescue)),
    ("disable-rescue", Verb::Manage(ManageVerb::DisableRescue)),
    ("change-type", Verb::Manage(ManageVerb::ChangeType)),
    ("set-rdns", Verb::Manage(ManageVerb::SetRdns)),
    ("attach-iso", Verb::Manage(ManageVerb::AttachIso)),
    ("detach-iso", Verb::Manage(ManageVerb::DetachIso)),
    ("create-image", Verb::Manage(ManageVerb::CreateImage)),
    ("enable-backup", Verb::Manage(ManageVerb::EnableBackup)),
    ("disable-backup", Verb::Manage(ManageVerb::DisableBackup)),
    ("off", Verb::Power(Power::Force)),
    ("new", Verb::Create),
    ("put", Verb::Notify),
];

/// Whether a panel's queue takes the verb unless the setting `queue_verbs`
/// says otherwise: every verb but `settag` and `deltag`, which adopt or
/// release servers: an operator's decision, not a panel's.
const fn queued_by_default(verb: Verb) -> bool {
    !matches!(verb, Verb::SetTag | Verb::DelTag)
}

/// A number for each verb, so that `const fn`s can compare them.
const fn code(verb: Verb) -> u8 {
    match verb {
        Verb::Sync => 0,
        Verb::Power(Power::Start) => 1,
        Verb::Power(Power::Stop) => 2,
        Verb::Power(Power::Force) => 3,
        Verb::Power(Power::Reboot) => 4,
        Verb::Power(Power::Reset) => 5,
        Verb::Console => 6,
        Verb::Create => 7,
        Verb::Kill => 8,
        Verb::SetTag => 9,
        Verb::DelTag => 10,
        Verb::Notify => 11,
        Verb::Manage(ManageVerb::Rebuild) => 12,
        Verb::Manage(ManageVerb::ResetPassword) => 13,
        Verb::Manage(ManageVerb::EnableRescue) => 14,
        Verb::Manage(ManageVerb::DisableRescue) => 15,
        Verb::Manage(ManageVerb::ChangeType) => 16,
        Verb::Manage(ManageVerb::SetRdns) => 17,
        Verb::Manage(ManageVerb::AttachIso) => 18,
        Verb::Manage(ManageVerb::DetachIso) => 19,
        Verb::Manage(ManageVerb::CreateImage) => 20,
        Verb::Manage(ManageVerb::EnableBackup) => 21,
        Verb::Manage(ManageVerb::DisableBackup) => 22,
    }
}

/// Writes [`QUEUE_DEFAULT`] into `out` (when it is long enough) and
/// answers its length: each verb in [`SPELLINGS`]' order followed by its
/// aliases, comma-separated.
const fn queue_default_into(out: &mut [u8]) -> usize {
    let mut at = 0;
    let mut i = 0;
    while i < SPELLINGS.len() {
        let verb = SPELLINGS[i].1;
        // The verb's first spelling, its name: the aliases follow it.
        let mut first = true;
        let mut k = 0;
        while k < i {
            if code(SPELLINGS[k].1) == code(verb) {
                first = false;
            }
            k += 1;
        }
        if first && queued_by_default(verb) {
            let mut j = i;
            while j < SPELLINGS.len() {
                if code(SPELLINGS[j].1) == code(verb) {
                    let word = SPELLINGS[j].0.as_bytes();
                    if at > 0 {
                        if at < out.len() {
                            out[at] = b',';
                        }
                        at += 1;
                    }
                    let mut b = 0;
                    while b < word.len() {
                        if at < out.len() {
                            out[at] = word[b];
                        }
                        at += 1;
                        b += 1;
                    }
                }
                j += 1;
            }
        }
        i += 1;
    }
    at
}

const QUEUE_DEFAULT_LEN: usize = queue_default_into(&mut []);
const QUEUE_DEFAULT_BYTES: [u8; QUEUE_DEFAULT_LEN] = {
    let mut out = [0; QUEUE_DEFAULT_LEN];
    queue_default_into(&mut out);
    out
};

/// The default of the setting `queue_verbs`: every spelling of the verbs
/// [`queued_by_default`], each name followed by its aliases,
/// comma-separated.
pub const QUEUE_DEFAULT: &str = match std::str::from_utf8(&QUEUE_DEFAULT_BYTES) {
    Ok(text) => text,
    Err(_) => panic!("verb spellings are ASCII"),
};

/// The longest message `notify` carries, in bytes.
pub const MAX_MESSAGE_LEN: usize = 1000;

impl Verb {
    /// Looks up a verb by any of its spellings (`off`, `new`, `put` included).
    pub fn from_word(word: &str) -> Option<Verb> {
        SPELLINGS.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        SPELLINGS
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(w, _)| *w)
            .unwrap_or("?")
    }

    fn shape(self) -> Shape {
        match self {
            Verb::Sync => Shape::OptionalName,
            Verb::Create => Shape::NameAndOptions,
            Verb::Notify => Shape::Message,
            Verb::Manage(_) => Shape::Manage,
            _ => Shape::Name,
        }
    }

    /// Every verb for help texts, in [`SPELLINGS`]' order, with its
    /// aliases: `sync, start, stop, force (alias off), ...`.
    pub fn help_list() -> String {
        let mut shown: Vec<String> = Vec::new();
        for (i, (word, verb)) in SPELLINGS.iter().enumerate() {
            if SPELLINGS[..i].iter().any(|(_, v)| v == verb) {
                continue;
            }
            let aliases: Vec<&str> = SPELLINGS[i + 1..]
                .iter()
                .filter(|(_, v)| v == verb)
                .map(|(w, _)| *w)
                .collect();
            shown.push(match aliases.as_slice() {
                [] => word.to_string(),
                aliases => format!("{word} (alias {})", aliases.join(", alias ")),
            });
        }
        shown.join(", ")
    }

    /// Every power verb's name, in [`SPELLINGS`]' order.
    pub fn power_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for (word, verb) in SPELLINGS {
            if matches!(verb, Verb::Power(_))
                && Verb::from_word(word).map(Verb::name) == Some(*word)
            {
                names.push(word);
            }
        }
        names
    }

    /// Every accepted spelling, in [`SPELLINGS`]' order.
    pub fn words() -> Vec<&'static str> {
        SPELLINGS.iter().map(|(w, _)| *w).collect()
    }

    /// All accepted spellings, for messages.
    pub fn spellings() -> String {
        SPELLINGS
            .iter()
            .map(|(w, _)| *w)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A validated command, ready to be queued: the text the `commands`
/// table keeps and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The verb as written (`off`, not `force`).
    pub cmd: String,
    /// The arguments joined by one space; empty when there are none.
    pub arg: String,
    /// What `cmd` and `arg` mean.
    pub command: Command,
}

impl CommandLine {
    /// Validates a verb and its argument words.
    pub fn from_words<S: AsRef<str>>(cmd: &str, args: &[S]) -> Result<CommandLine, String> {
        let verb = Verb::from_word(cmd).ok_or_else(|| {
            format!(
                "unknown command `{}` (known: {})",
                shown(cmd),
                Verb::spellings()
            )
        })?;
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let (arg, command) = match verb.shape() {
            Shape::Message => {
                let msg = args.join(" ");
                check_message(&msg)?;
                (msg.clone(), Command::Notify(msg))
            }
            Shape::OptionalName if args.is_empty() || args == [""] => {
                (String::new(), Command::Sync(None))
            }
            Shape::Manage => {
                let Verb::Manage(verb) = verb else {
                    return Err(format!("`{cmd}` is not a client-area verb"));
                };
                let Some(name) = args.first() else {
                    return Err(format!("`{cmd}` needs a server name"));
                };
                check_server_name(name)?;
                let manage = verb.parse(cmd, &args[1..])?;
                let mut words = vec![name.to_string()];
                words.extend(manage.words());
                (words.join(" "), Command::Manage(name.to_string(), manage))
            }
            shape => {
                let max = if shape == Shape::NameAndOptions { 4 } else { 1 };
                if shape == Shape::OptionalName && args.len() > 1 {
                    return Err(format!(
                        "`{cmd}` takes at most one server name, got {} words",
                        args.len()
                    ));
                }
                let Some(name) = args.first() else {
                    return Err(format!("`{cmd}` needs a server name"));
                };
                if args.len() > max {
                    return Err(format!(
                        "`{cmd}` takes {}, got {} words",
                        if max == 1 {
                            "one server name".to_string()
                        } else {
                            "a server name and at most TYPE, IMAGE and LOCATION".to_string()
                        },
                        args.len()
                    ));
                }
                check_server_name(name)?;
                for word in &args[1..] {
                    check_option_word(word)?;
                }
                let name = name.to_string();
                let word = |i: usize| args.get(i).map(|w| w.to_string());
                let command = match verb {
                    Verb::Sync => Command::Sync(Some(name)),
                    Verb::Power(power) => Command::Power(power, name),
                    Verb::Console => Command::Console(name),
                    Verb::Create => Command::Create(NewServer {
                        name,
                        server_type: word(1),
                        image: word(2),
                        location: word(3),
                    }),
                    Verb::Kill => Command::Kill(name),
                    Verb::SetTag => Command::SetTag(name),
                    Verb::DelTag => Command::DelTag(name),
                    // Their shapes are handled above.
                    Verb::Notify | Verb::Manage(_) => {
                        return Err(format!("`{cmd}` takes other words"));
                    }
                };
                (args.join(" "), command)
            }
        };
        Ok(CommandLine {
            cmd: cmd.to_string(),
            arg,
            command,
        })
    }

    /// Re-checks a row of the `commands` table, which panels may fill with
    /// plain SQL: `arg` holds the words after the verb.
    pub fn from_row(cmd: &str, arg: &str) -> Result<CommandLine, String> {
        if Verb::from_word(cmd) == Some(Verb::Notify) {
            return CommandLine::from_words(cmd, &[arg.trim()]);
        }
        CommandLine::from_words(cmd, &arg.split_ascii_whitespace().collect::<Vec<_>>())
    }

    /// Parses one spool line: `CMD ARG...`, words separated by blanks.
    pub fn parse_line(line: &str) -> Result<CommandLine, String> {
        let line = line.trim_start();
        let cmd = line
            .split_ascii_whitespace()
            .next()
            .ok_or("empty command line")?;
        CommandLine::from_row(cmd, &line[cmd.len()..])
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.arg.is_empty() {
            f.write_str(&self.cmd)
        } else {
            write!(f, "{} {}", self.cmd, self.arg)
        }
    }
}

/// Checks a server name as Hetzner does: a hostname per RFC 1123, i.e.
/// dot-separated labels of 1 to 63 letters, digits and dashes, no label
/// starting or ending with a dash, 253 characters in all.
pub fn check_server_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid server name `{}`: {why}", shown(name)));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("empty label between dots");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, dashes and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with a dash");
        }
    }
    Ok(())
}

/// A Hetzner catalog name or id (server type, image, location): letters,
/// digits, `-`, `_`, `.`, at most 63 characters.
pub fn is_hetzner_name(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 63
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks TYPE, IMAGE and LOCATION words of `create`.
fn check_option_word(word: &str) -> Result<(), String> {
    if is_hetzner_name(word) {
        Ok(())
    } else {
        Err(format!(
            "invalid create option `{}`: expected a Hetzner name or id (letters, digits, `-`, `_`, `.`)",
            shown(word)
        ))
    }
}

fn check_message(msg: &str) -> Result<(), String> {
    if msg.is_empty() {
        return Err("`notify` needs a message".into());
    }
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(format!("message longer than {MAX_MESSAGE_LEN} bytes"));
    }
    if msg.chars().any(char::is_control) {
        return Err("message contains control characters".into());
    }
    Ok(())
}

/// A string with control characters escaped, kept whole (paths).
pub fn escaped(value: &str) -> String {
    value.escape_debug().collect()
}

/// A user-supplied string made safe to quote in a one-line message:
/// control characters escaped, long values cut.
pub fn shown(value: &str) -> String {
    let escaped: String = value.escape_debug().collect();
    if escaped.chars().count() > 80 {
        let cut: String = escaped.chars().take(77).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_queue_leaves_adoption_to_the_operator() {
        assert_eq!(
            QUEUE_DEFAULT,
            "sync,start,stop,force,off,reboot,reset,console,create,new,kill,notify,put,\
             rebuild,reset-password,enable-rescue,disable-rescue,change-type,set-rdns,\
             attach-iso,detach-iso,create-image,enable-backup,disable-backup"
        );
    }

    /// The dashboard's power buttons (`www/index.js`, `VERBS`) are the
    /// power verbs, each once.
    #[test]
    fn the_dashboards_power_buttons_are_the_power_verbs() {
        let script = include_str!("../../www/index.js");
        let start = script.find("const VERBS = [").expect("index.js has VERBS");
        let list = &script[start..];
        let list = &list[..list.find("];").expect("VERBS ends")];
        let mut buttons: Vec<&str> = list
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().strip_prefix("['"))
            .filter_map(|l| l.split('\'').next())
            .collect();
        let mut verbs = Verb::power_names();
        buttons.sort_unstable();
        verbs.sort_unstable();
        assert_eq!(buttons, verbs);
    }

    fn line(s: &str) -> Result<String, String> {
        CommandLine::parse_line(s).map(|c| c.to_string())
    }

    #[test]
    fn accepts_the_vocabulary_and_aliases() {
        assert_eq!(line("start vm1").unwrap(), "start vm1");
        assert_eq!(line("off vm1\n").unwrap(), "off vm1");
        assert_eq!(
            line("  new  m-vm1 cx22 debian-12 fsn1 ").unwrap(),
            "new m-vm1 cx22 debian-12 fsn1"
        );
        assert_eq!(line("sync").unwrap(), "sync");
        assert_eq!(
            line("sync web.example.com").unwrap(),
            "sync web.example.com"
        );
        assert_eq!(line("put hello  world").unwrap(), "put hello  world");
        assert_eq!(Verb::from_word("off"), Some(Verb::Power(Power::Force)));
        assert_eq!(Verb::Power(Power::Force).name(), "force");
        assert_eq!(Verb::Create.name(), "create");
    }

    #[test]
    fn a_line_is_parsed_into_its_typed_command() {
        let command = |s: &str| CommandLine::parse_line(s).unwrap().command;
        assert_eq!(command("sync"), Command::Sync(None));
        assert_eq!(command("sync vm1"), Command::Sync(Some("vm1".into())));
        assert_eq!(
            command("off vm1"),
            Command::Power(Power::Force, "vm1".into())
        );
        assert_eq!(
            command("new m-vm1 cx22 debian-12"),
            Command::Create(NewServer {
                name: "m-vm1".into(),
                server_type: Some("cx22".into()),
                image: Some("debian-12".into()),
                location: None,
            })
        );
        assert_eq!(
            command("put hello  world"),
            Command::Notify("hello  world".into())
        );
        assert_eq!(command("kill vm1").server(), Some("vm1"));
        assert_eq!(command("notify vm1").server(), None);
        assert_eq!(
            CommandLine::from_row("sync", "").unwrap().command,
            Command::Sync(None)
        );
    }

    #[test]
    fn refuses_what_a_consumer_could_not_run() {
        assert!(line("").unwrap_err().contains("empty"));
        assert!(
            line("explode vm1")
                .unwrap_err()
                .contains("unknown command `explode`")
        );
        assert!(line("START vm1").unwrap_err().contains("unknown command"));
        assert!(line("start").unwrap_err().contains("needs a server name"));
        assert!(
            line("start vm1 vm2")
                .unwrap_err()
                .contains("one server name")
        );
        assert!(line("create a b c d e").unwrap_err().contains("at most"));
        assert!(
            line("create vm1 cx22;rm")
                .unwrap_err()
                .contains("invalid create option")
        );
        assert!(line("kill -vm1").unwrap_err().contains("dash"));
        assert!(line("kill vm_1").unwrap_err().contains("only letters"));
        assert!(line("kill a..b").unwrap_err().contains("empty label"));
        assert!(
            line(&format!("kill {}", "a".repeat(64)))
                .unwrap_err()
                .contains("63")
        );
        assert!(line("notify").unwrap_err().contains("needs a message"));
    }

    #[test]
    fn server_names_follow_rfc_1123() {
        assert!(check_server_name("vm1").is_ok());
        assert!(check_server_name("M-Vm-1").is_ok());
        assert!(check_server_name("1a").is_ok());
        assert!(check_server_name(&format!("{}.{}", "a".repeat(63), "b".repeat(63))).is_ok());
        assert!(check_server_name(&vec!["a".repeat(63); 4].join(".")).is_err());
        assert!(check_server_name("vm1-").is_err());
        assert!(check_server_name("vm 1").is_err());
        assert!(check_server_name("vm1.").is_err());
        assert!(check_server_name("vm\u{e9}").is_err());
    }

    #[test]
    fn hostile_values_are_escaped_and_cut_in_messages() {
        let err = line("kill a\u{1b}[31mred").unwrap_err();
        assert!(!err.contains('\u{1b}'), "{err}");
        let err = line(&format!("{} vm1", "x".repeat(500))).unwrap_err();
        assert!(!err.contains(&"x".repeat(100)), "{err}");
    }
}
