//! The man page, generated from the clap definitions (so `--help`, the man
//! page and the completions cannot drift apart) plus the sections clap
//! cannot know: every subcommand in full, exit status, environment, files.
//! `man/hcc.1` is this output; a test fails when it is stale.

use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::Cli;

pub fn render() -> String {
    let cmd = Cli::command();
    let man = Man::new(cmd.clone()).date("2026-11-23");
    let mut page = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut page);
    let _ = man.render_name_section(&mut page);
    let _ = man.render_synopsis_section(&mut page);
    let _ = man.render_description_section(&mut page);
    let _ = man.render_options_section(&mut page);
    let mut page = String::from_utf8_lossy(&page).into_owned();

    page.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        render_subcommand(&mut page, "hcc", sub);
    }
    page.push_str(EXTRA_SECTIONS);
    let mut version = Vec::new();
    let _ = man.render_version_section(&mut version);
    page.push_str(&String::from_utf8_lossy(&version));
    page
}

fn render_subcommand(page: &mut String, parent: &str, sub: &clap::Command) {
    let path = format!("{parent} {}", sub.get_name());
    if sub.has_subcommands() {
        for nested in sub.get_subcommands() {
            render_subcommand(page, &path, nested);
        }
        return;
    }
    let mut usage = path.clone();
    // Hidden arguments (`demo`'s shadow of --home) are not offered here
    // either.
    for arg in sub
        .get_arguments()
        .filter(|a| !a.is_global_set() && !a.is_hide_set())
    {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let value = value_name(arg);
        let word = match (arg.get_long(), value) {
            (Some(long), Some(value)) => format!("[--{long} {value}]"),
            (Some(long), None) => format!("[--{long}]"),
            (None, value) => {
                let name = value.unwrap_or_else(|| id.to_uppercase());
                let many = matches!(arg.get_num_args(), Some(r) if r.max_values() > 1);
                let name = if many { format!("{name}...") } else { name };
                if arg.is_required_set() {
                    name
                } else {
                    format!("[{name}]")
                }
            }
        };
        usage.push(' ');
        usage.push_str(&word);
    }
    page.push_str(&format!(".TP\n\\fB{}\\fR\n", escape(&usage)));
    let about = sub
        .get_long_about()
        .or(sub.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    for (i, para) in about.split("\n\n").enumerate() {
        if i > 0 {
            page.push_str(".IP\n");
        }
        page.push_str(&escape(&para.replace('\n', " ")));
        page.push('\n');
    }
    let aliases: Vec<&str> = sub.get_visible_aliases().collect();
    if !aliases.is_empty() {
        page.push_str(".IP\n");
        page.push_str(&escape(&format!("Alias: {}.", aliases.join(", "))));
        page.push('\n');
    }
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = arg.get_id().as_str();
        if id == "home" || id == "help" || id == "version" {
            continue;
        }
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|s| s.to_string())
            .unwrap_or_default()
            .replace('\n', " ");
        let name = match (arg.get_long(), value_name(arg)) {
            (Some(long), Some(value)) => format!("--{long} {value}"),
            (Some(long), None) => format!("--{long}"),
            (None, value) => value.unwrap_or_else(|| id.to_uppercase()),
        };
        let default = arg
            .get_default_values()
            .first()
            .map(|d| format!(" [default: {}]", d.to_string_lossy()))
            .unwrap_or_default();
        page.push_str(&format!(
            ".IP\n\\fI{}\\fR: {}{}\n",
            escape(&name),
            escape(&help),
            escape(&default)
        ));
    }
}

/// The value placeholder of an argument that takes a value.
fn value_name(arg: &clap::Arg) -> Option<String> {
    if !arg.get_action().takes_values() {
        return None;
    }
    let name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|n| n.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    Some(name)
}

/// Escapes text for roff: backslashes, and a leading dot or quote that
/// roff would read as a request.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

const EXTRA_SECTIONS: &str = r#".SH EXIT STATUS
.TP
\fB0\fR
Success.
.TP
\fB1\fR
The operation failed or found nothing to do: an error from the Hetzner API or the network, an action that ended in error, a server not found, \fBpull\fR on an empty queue, \fBdone\fR or \fBfail\fR on a command that is already closed or does not exist, a damaged, empty or foreign \fIhcc.db\fR (named and left untouched), a database or file system error.
.TP
\fB2\fR
Usage or configuration error: a bad argument, an unknown command or server name, an invalid setting or configuration file, no API token, \fBkill\fR without \fB\-\-yes\fR when standard input is not a terminal, \fBbackup\fR onto an existing file without \fB\-\-force\fR, \fBrestore\fR of a file that is not a sound hcc database, a database written by a newer hcc, \fBserve\fR on an address reachable from other machines while no API key exists, an unsafe state directory (a symbolic link, FIFO, hard link or foreign directory where hcc keeps a file or directory; the message names it).
.TP
\fB3\fR
Refused by the guard: the server lacks the managed label, or a new server's name lacks the configured prefix.
.TP
\fB4\fR
Busy: another \fBhcc worker\fR (or \fBhcc serve \-\-worker\fR) already runs on this state directory; \fBrestore\fR while a worker or \fBhcc serve\fR runs.
.TP
\fB5\fR
Stale lease: \fBdone\fR or \fBfail\fR for a lease that expired and was handed to another consumer; nothing was changed.
.TP
\fB6\fR
\fBcheck\fR found a problem in the database (one line each on standard output).
.PP
Errors are one line on standard error, beginning with \fBhcc:\fR. A closed output pipe ends hcc silently with status 0.
.SH ENVIRONMENT
.TP
\fBHCC_HOME\fR
State directory, as \fB\-\-home\fR.
.TP
\fBXDG_STATE_HOME\fR
When neither is given, the state directory is \fI$XDG_STATE_HOME/hcc\fR, else \fI~/.local/state/hcc\fR.
.TP
\fBHCLOUD_TOKEN\fR
Hetzner Cloud API token; overrides the \fBtoken\fR setting.
.TP
\fBCREDENTIALS_DIRECTORY\fR
Set by systemd for \fBLoadCredential=\fR: the token is read from \fI$CREDENTIALS_DIRECTORY/hcloud\-token\fR when that file exists (after \fBHCLOUD_TOKEN\fR, before the settings).
.TP
\fBHCLOUD_ENDPOINT\fR
Hetzner Cloud API base URL; overrides the \fBendpoint\fR setting.
.TP
\fBHCC_CONSUMER\fR
Names the consumer for \fBpull\fR and \fBnext\fR: a request without \fB\-\-id\fR closes, as done, what the same consumer leased before. Without it, the consumer is the calling process's parent or process group.
.SH FILES
.TP
\fIhcc.db\fR
SQLite database (WAL mode): tables \fBservers\fR, \fBcommands\fR, \fBmessages\fR, the view \fBvms\fR, and for \fBhcc serve\fR \fBapi_keys\fR, \fBconsole_links\fR and \fBconsole_sessions\fR (hashes only, never a key or token). Panels may read it and insert into \fBcommands\fR.
.TP
\fIconfig.json\fR
Settings, mode 0600 (it may hold the API token).
.TP
\fIspool/tmp\fR, \fIspool/new\fR
Maildir-style spool: write a file holding one line \fBCMD ARG...\fR into \fIspool/tmp\fR, then rename it into \fIspool/new\fR under a unique name.
.TP
\fIworker.lock\fR, \fIserve.lock\fR
Held by the running worker and by every running \fBhcc serve\fR; \fBrestore\fR refuses while either is held.
.TP
\fIhcc.db.replaced\-\fRTIME
A database \fBrestore\fR replaced, kept with mode 0600.
.TP
\fIspool/bad\fR
Rejected spool files, each with \fINAME.why\fR giving the reason.
.SH HTTP API
\fBhcc serve\fR answers \fB/api/v1/servers\fR, \fB/api/v1/servers/\fINAME\fR, \fBPOST /api/v1/servers/\fINAME\fB/actions/\fIVERB\fR, \fBPOST /api/v1/servers/\fINAME\fB/console\fR, \fBPOST /api/v1/servers/\fINAME\fB/console\-link\fR, \fB/api/v1/commands/\fIID\fR and \fB/api/v1/status\fR with \fBAuthorization: Bearer\fR \fIKEY\fR (\fBhcc apikey add\fR); \fB/api/v1/openapi.json\fR describes them. Errors are JSON: \fB{"error":{"code":...,"message":...}}\fR. A one-time console link \fB/c/\fITOKEN\fR opens once, within \fBlink_ttl\fR seconds.
.SH SEE ALSO
\fBsqlite3\fR(1), \fBinotify\fR(7), \fBnginx\fR(8)
"#;
