//! The command line as typed: clap definitions only. Doc comments here are
//! the help text, the man page and the completions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Hetzner Cloud console middleware: a local SQLite state, a command queue
/// fed by panels, and VNC console access.
///
/// hcc sits between a hosting panel or billing system and the Hetzner Cloud
/// API. Panels queue work by renaming a file into `spool/new`, inserting a
/// row into `commands`, or running `hcc push`; consumers take it with
/// `hcc next` or `hcc pull` and close it with `hcc done` or `hcc fail`.
#[derive(Debug, Parser)]
#[command(
    name = "hcc",
    version,
    propagate_version = true,
    max_term_width = 100,
    before_help = "New here? Start with `hcc demo`: the whole chain on this machine, the \
                   simulator playing Hetzner, nothing to set up and nothing left behind. \
                   Then `hcc setup`, `hcc worker`, `hcc status`."
)]
pub struct Cli {
    /// State directory holding hcc.db, config.json and spool/.
    /// Default: $XDG_STATE_HOME/hcc, else ~/.local/state/hcc.
    #[arg(long, global = true, env = "HCC_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for each setting interactively, showing its current value.
    ///
    /// RETURN keeps a value, `-` clears it (back to its default). The token
    /// is never shown and not echoed on a terminal. Nothing is saved until
    /// the final question is answered with `y`.
    Setup,

    /// Read or change settings without questions.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Queue a command and wake consumers.
    ///
    /// CMD is one of sync, start, stop, force (alias off), reboot, reset,
    /// console, create (alias new), kill, settag, deltag, notify (alias
    /// put), rebuild, reset-password, enable-rescue, disable-rescue,
    /// change-type, set-rdns, attach-iso, detach-iso, create-image,
    /// enable-backup, disable-backup. Server names must be valid hostnames
    /// (RFC 1123); `create` takes NAME [TYPE [IMAGE [LOCATION]]],
    /// `rebuild` NAME IMAGE, `enable-rescue` NAME [TYPE], `change-type`
    /// NAME TYPE [keep-disk], `set-rdns` NAME IP [HOSTNAME], `attach-iso`
    /// NAME ISO, `create-image` NAME [DESCRIPTION], the others NAME.
    Push {
        /// Print the new command's id.
        #[arg(long)]
        id: bool,
        /// The command word.
        #[arg(value_name = "CMD")]
        cmd: String,
        /// Its arguments.
        #[arg(value_name = "ARG")]
        args: Vec<String>,
    },

    /// Lease the oldest queued command and print `CMD ARG`; exit 1 if none.
    ///
    /// Ingests the spool first. The command is marked running until the
    /// lease expires, then queued again (up to max_attempts times), so no
    /// command is lost when a consumer dies. Without --id, the same
    /// consumer's next `pull` or `next` marks it done (the original tool's
    /// loops never acknowledge; the consumer is the parent process or
    /// process group, or HCC_CONSUMER); with --id, close it with `hcc done
    /// ID` or `hcc fail ID REASON`; with --handle, with `hcc done ID:N`.
    Pull(LeaseArgs),

    /// Like pull, but block until a command can be leased.
    ///
    /// Wakes on inotify when a spool file arrives or any process writes to
    /// the database; ingests the spool as it goes.
    Next(LeaseArgs),

    /// Mark a leased command done.
    ///
    /// A stale close (the lease expired and the command was leased again
    /// since) is refused with exit 5: a bare ID is accepted from the
    /// consumer that holds the latest lease (same HCC_CONSUMER, parent or
    /// process group) or for a command leased only once; a handle ID:N
    /// (`pull --handle`) only while lease N is the latest.
    Done {
        /// The command's id, as printed by `pull --id`, or its lease handle
        /// ID:N, as printed by `pull --handle`.
        #[arg(value_name = "ID", value_parser = parse_lease_ref)]
        id: LeaseRef,
        /// Optional result, stored as JSON (text that is not JSON is stored
        /// as a JSON string).
        #[arg(value_name = "RESULT")]
        result: Option<String>,
    },

    /// Mark a leased command failed.
    ///
    /// A stale close is refused with exit 5, as for done.
    Fail {
        /// The command's id, as printed by `pull --id`, or its lease handle
        /// ID:N, as printed by `pull --handle`.
        #[arg(value_name = "ID", value_parser = parse_lease_ref)]
        id: LeaseRef,
        /// Why it failed (one line).
        #[arg(value_name = "REASON", required = true)]
        reason: Vec<String>,
    },

    /// Append a message to the message ring.
    #[command(visible_alias = "notify")]
    Put {
        /// The message; several words are joined by spaces.
        #[arg(value_name = "MSG", required = true)]
        msg: Vec<String>,
    },

    /// Print every new message, one per line, forever.
    ///
    /// Prints messages put after it started, and `cmd` whenever new
    /// commands were queued (by push, spool or SQL), so that
    /// `hcc wait | while read -r msg; do ...; done` loops wake up for work.
    /// Ingests the spool as it goes.
    Wait {
        /// Show progress characters on stderr: idle tick, message, empty
        /// wake-up, start, skipped (defaults `.x_:-`; the given characters
        /// replace them in order, '' keeps them all).
        #[arg(value_name = "PROGRESS")]
        progress: Option<String>,
    },

    /// Move the spool into the queue once: valid files become commands,
    /// others go to spool/bad with a .why file.
    Ingest,

    /// List servers from the local table (no API call): managed ones, or
    /// all with --all. Columns: name, status, IPv4, IPv6, type, location,
    /// age of the last console credentials.
    List {
        /// Include servers without the managed label.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// List Hetzner's system images.
    Images(JsonArgs),

    /// List the ISOs a server may mount (`hcc attach-iso NAME ISO`).
    Isos(JsonArgs),

    /// List the snapshots hcc made (`hcc create-image`): those carrying the
    /// managed label, newest first, with the server each came from
    /// (`hcc rebuild NAME ID` reinstalls from one).
    Snapshots(JsonArgs),

    /// List server types with cores, memory, disk and monthly price.
    Types(JsonArgs),

    /// List datacenters.
    #[command(visible_alias = "datacenters")]
    Dc(JsonArgs),

    /// List locations.
    Locations(JsonArgs),

    /// Bring the local servers table in step with Hetzner.
    ///
    /// Without NAME: every server, in pages of 50; rows of servers gone at
    /// Hetzner are removed. With NAME: that managed server only. With
    /// --changes: only the servers that Hetzner's action log says changed
    /// since the last sync (one request when nothing did; a full sync where
    /// the API has no action log). Never spends the rate budget's reserve.
    /// Prints a one-line summary.
    Sync {
        /// One server to sync.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// Refetch only servers touched by new actions.
        #[arg(long, conflicts_with = "name")]
        changes: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Create a managed server; prints its root password once.
    ///
    /// TYPE, IMAGE and LOCATION default to the settings server_type, image
    /// and location. The name must begin with the configured prefix and
    /// must not exist yet. The server gets the managed label.
    #[command(visible_alias = "new")]
    Create {
        /// Server name (a hostname, RFC 1123).
        #[arg(value_name = "NAME")]
        name: String,
        /// Server type, e.g. cx22.
        #[arg(value_name = "TYPE")]
        server_type: Option<String>,
        /// Image, e.g. debian-12.
        #[arg(value_name = "IMAGE")]
        image: Option<String>,
        /// Location, e.g. fsn1.
        #[arg(value_name = "LOCATION")]
        location: Option<String>,
        #[command(flatten)]
        opts: ActionArgs,
    },

    /// Power a managed server on.
    Start(ServerArgs),

    /// Shut a managed server down gracefully (ACPI).
    Stop(ServerArgs),

    /// Power a managed server off hard.
    #[command(visible_alias = "off")]
    Force(ServerArgs),

    /// Reboot a managed server gracefully (ACPI).
    Reboot(ServerArgs),

    /// Reset a managed server hard.
    Reset(ServerArgs),

    /// Reinstall a managed server from an image: a system image by name
    /// or id, or a snapshot of this project by id. Its disk is wiped.
    ///
    /// Prints the new root password once; it is also stored in
    /// servers.root_password (with root_password_at).
    Rebuild {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Image name or id, e.g. debian-12.
        #[arg(value_name = "IMAGE")]
        image: String,
        #[command(flatten)]
        opts: ActionArgs,
    },

    /// Reset the root password of a managed server (its OS must run
    /// Hetzner's guest agent, as Hetzner's images do).
    ///
    /// Prints the new root password once; it is also stored in
    /// servers.root_password (with root_password_at).
    ResetPassword(ServerArgs),

    /// Boot a managed server into a rescue system at its next reboot.
    ///
    /// Prints the rescue system's root password once; it is also stored in
    /// servers.root_password (with root_password_at). Reboot the server
    /// (`hcc reboot NAME`) to enter it.
    EnableRescue {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// The rescue system; default linux64.
        #[arg(value_name = "TYPE")]
        rescue_type: Option<String>,
        #[command(flatten)]
        opts: ActionArgs,
    },

    /// Boot a managed server from its disk again at its next reboot.
    DisableRescue(ServerArgs),

    /// Change the server type of a managed server (resize).
    ///
    /// Hetzner changes servers that are off only: a running server is shut
    /// down (ACPI), powered off hard when still running after the
    /// shutdown_timeout setting, changed, and started again. Each step is
    /// reported on stderr. The disk grows with the type unless --keep-disk
    /// is given; a disk never shrinks, so only --keep-disk leaves a later
    /// change to a smaller type possible.
    ChangeType {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Server type, e.g. cx32.
        #[arg(value_name = "TYPE")]
        server_type: String,
        /// Keep the disk as it is.
        #[arg(long)]
        keep_disk: bool,
        /// Queue it for `hcc worker` and return (it takes several actions
        /// in a row) instead of running it here.
        #[arg(long)]
        no_wait: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Set the reverse DNS entry of one of a managed server's addresses.
    SetRdns {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// The server's IPv4 address or an address of its IPv6 network.
        #[arg(value_name = "IP")]
        ip: String,
        /// The hostname; without it, Hetzner's default.
        #[arg(value_name = "HOSTNAME")]
        hostname: Option<String>,
        #[command(flatten)]
        opts: ActionArgs,
    },

    /// Attach an ISO to a managed server's virtual drive (`hcc isos`
    /// lists them); it boots from it at its next reboot.
    AttachIso {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// ISO name or id.
        #[arg(value_name = "ISO")]
        iso: String,
        #[command(flatten)]
        opts: ActionArgs,
    },

    /// Detach the ISO from a managed server.
    DetachIso(ServerArgs),

    /// Make a snapshot of a managed server (it carries the managed label
    /// and the label hcc-server=NAME; `hcc snapshots` lists them).
    CreateImage {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Its description; default `NAME snapshot`.
        #[arg(value_name = "DESCRIPTION")]
        description: Option<String>,
        #[command(flatten)]
        opts: ActionArgs,
    },

    /// Turn on daily backups of a managed server (Hetzner charges 20% of
    /// the server's price).
    EnableBackup(ServerArgs),

    /// Turn off backups of a managed server; Hetzner deletes its backups.
    DisableBackup(ServerArgs),

    /// Delete a managed server and its row.
    ///
    /// Asks for the name on a terminal; elsewhere --yes is required.
    Kill {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
        /// Return once Hetzner accepted the request.
        #[arg(long)]
        no_wait: bool,
    },

    /// Adopt a server: add the managed label.
    Settag {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
    },

    /// Release a server: remove the managed label.
    Deltag {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
    },

    /// Request console credentials for a managed server and print
    /// `<console_url setting><wss_url>#<password>`.
    ///
    /// Stores them in servers.console_url, console_password and console_at.
    /// Hetzner's URL must be used within one minute.
    Console {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Print JSON (url, wss_url, password, console_at).
        #[arg(long)]
        json: bool,
    },
    /// A managed server's CPU, disk and network metrics from Hetzner.
    ///
    /// Prints one line per series: its minimum, average, maximum and last
    /// value over the range, and a sparkline of the range (older samples
    /// on the left). The range ends at the last multiple of its step: 1h
    /// has a sample every 15 s, 24h every 5 min, 7d every 30 min, 30d every
    /// 2 h. CPU is in percent of one core times the cores, bandwidths in
    /// bytes per second, IOPS and packets per second as they are. Two
    /// Hetzner requests (the server by name, then its metrics).
    Metrics {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Metric types, a comma list; default all three.
        #[arg(
            long = "type",
            value_name = "TYPES",
            value_delimiter = ',',
            value_parser = ["cpu", "disk", "network"]
        )]
        types: Vec<String>,
        /// How far back.
        #[arg(long, value_name = "RANGE", default_value = "1h",
              value_parser = ["1h", "24h", "7d", "30d"])]
        since: String,
        /// Print Hetzner's metrics object (`{"metrics": {start, end, step,
        /// time_series}}`) as one line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// A server's console for a native VNC viewer (TigerVNC's vncviewer,
    /// Remmina, vncdotool) on a local port, until Ctrl-C.
    ///
    /// Prints the viewer's command line. Each viewer connection gets fresh
    /// console credentials; hcc authenticates to the console itself and
    /// asks the viewer for no password. An address beyond this machine
    /// needs --allow-remote, and viewers then need a one-off VNC password
    /// that hcc prints once.
    Vnc(VncArgs),
    /// Try everything on this machine: starts the simulator, a worker and
    /// `hcc serve` on a temporary state directory, queues work as a panel
    /// would and shows what happens.
    ///
    /// The state directory is always a new one of its own
    /// ($TMPDIR/hcc-demo-PID, else /tmp/hcc-demo-PID): --home and HCC_HOME
    /// are not used, so the demo never touches a real installation. Then
    /// keeps serving on loopback and prints the dashboard's URL (an
    /// admin API key in its fragment, which the browser never sends) and a
    /// one-time console link: the simulated servers' consoles really work
    /// (a text console that echoes what is typed). Ctrl-C (SIGINT or
    /// SIGTERM) stops every process it started and removes the state
    /// directory.
    Demo {
        /// Run, show and clean up at once, without serving (for scripts).
        #[arg(long)]
        quick: bool,
        /// The global --home, shadowed here so that the demo's help does
        /// not offer it: the demo always uses a state directory of its own.
        #[arg(long, hide = true, value_name = "DIR")]
        home: Option<PathBuf>,
    },

    /// Run the queue against Hetzner and keep the servers table fresh.
    ///
    /// One per state directory. Wakes on inotify, leases every queued
    /// command, starts it at Hetzner and polls all running actions together;
    /// a server's commands run in order, different servers overlap. Every
    /// cycle runs `sync --changes` (a full sync every full_sync_every
    /// cycles) on a thread of its own, beside the commands. Stops cleanly
    /// on SIGTERM or SIGINT, handing what it holds back to the queue. Logs
    /// one line per event to stderr.
    Worker {
        /// Seconds from the end of one refresh cycle to the next.
        #[arg(long, value_name = "SECONDS", default_value_t = 100,
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        cycle: u64,
    },

    /// Show whether the worker and `hcc serve` run, the queue, the last sync, the rate
    /// budget and the last error. Exits 1 when no worker runs.
    ///
    /// Creates nothing: without a state directory (no hcc.db) it says so
    /// in one line and exits 1.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Serve console pages, one-time console links and the JSON API.
    ///
    /// Listens on 127.0.0.1:8479 by default. Every `/api/v1` route needs an
    /// API key (`hcc apikey add`); a one-time link (`/c/TOKEN`) needs
    /// nothing else. A non-loopback address is refused until an API key
    /// exists; put a TLS proxy in front (scripts/nginx/hcc.conf). Logs one
    /// line per request to stderr, without query strings or secrets. Stops
    /// on SIGTERM or SIGINT. Re-reads config.json on SIGHUP and when it
    /// changes (`hcc config set`, an editor): the next request uses the new
    /// settings; a file that does not load leaves the old ones in force,
    /// with one log line; trusted_proxies, and the settings of the worker
    /// that --worker runs, apply at the next start. `GET /metrics` answers Prometheus metrics to
    /// clients on this machine that no proxy relays, and to admin keys
    /// (setting `metrics`: loopback, admin or off).
    Serve(ServeArgs),

    /// Manage the API keys of `hcc serve`.
    #[command(subcommand)]
    Apikey(ApikeyCommand),

    /// List console sessions, newest first, one row per page session (a
    /// console page, however often it reloaded or reconnected): id,
    /// server, opened by (link and key), client address, user agent, mode,
    /// started, first connected, ended, connections, bytes each way
    /// (summed), end reason. Never a secret.
    ///
    /// A brokered page that never connected ends `expired unused` once its
    /// tickets expired. hcc sees neither the connection nor the bytes of a
    /// direct-mode session (the browser reaches the console itself): those
    /// columns say `direct`, and it ends with its page session.
    Sessions {
        /// Only page sessions with a live connection (connected through
        /// hcc and not ended).
        #[arg(long)]
        live: bool,
        /// Below each page session, its connections: each one's own client
        /// address and user agent, connected, ended, bytes, end reason
        /// (`replaced` when the page connected again).
        #[arg(long)]
        connections: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// List at most this many.
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
        limit: i64,
    },

    /// Cut a server's console access now: its unopened console links are
    /// void, its console pages get no fresh credentials, and its live
    /// sessions end (`hcc serve` ends them within a second).
    ///
    /// Works while `hcc serve` runs as another process. NAME is a server in
    /// the servers table, or one that console links or sessions were made
    /// for (a server deleted since); another name exits 1. New links can be
    /// made at once; to refuse them, `hcc suspend`.
    Revoke {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
    },

    /// Refuse a server's consoles until `hcc resume`: its links answer 403,
    /// no new links or console credentials are handed out for it through
    /// `hcc serve`, and its live sessions end.
    ///
    /// Stored in the database, so it survives restarts. Suspending a
    /// suspended server keeps the first suspension. NAME as for revoke.
    Suspend {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
    },

    /// Lift a suspension: links and consoles for the server work again
    /// (links that expired meanwhile stay expired). Resuming a server that
    /// is not suspended changes nothing and exits 0.
    Resume {
        /// Server name.
        #[arg(value_name = "NAME")]
        name: String,
    },

    /// Copy the database to FILE, consistent while the worker, `hcc serve`
    /// and panels go on writing.
    ///
    /// Uses SQLite's online backup API from one read snapshot, a slice of
    /// pages at a time, so writers are not held up. FILE is written under
    /// a temporary name in its directory with mode 0600 (it holds console
    /// and root passwords), then renamed into place: a symlink at FILE is
    /// replaced, never followed. An existing FILE exits 2 unless --force;
    /// so does the live hcc.db itself.
    /// Progress shows on a terminal for large databases.
    Backup {
        /// The file to write.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Put a backup back as the state directory's database.
    ///
    /// Refused (exit 4) while `hcc worker` or `hcc serve` runs on the state
    /// directory. FILE is copied into the state directory and the copy
    /// checked: an SQLite database, hcc's (application id, commands
    /// table), a schema version no newer than this hcc's, `PRAGMA
    /// integrity_check` ok; else exit 2 and nothing changes. The replaced
    /// database is kept beside it as hcc.db.replaced-<UTC time> (mode
    /// 0600), and the copy is written into hcc.db in one transaction, so
    /// connections panels hold open see the restored state. An older
    /// schema is upgraded.
    Restore {
        /// The backup to restore.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Check the database: `PRAGMA integrity_check`, `PRAGMA
    /// foreign_key_check` and hcc's invariants.
    ///
    /// The invariants: no command `running` without a lease, no command
    /// merged into one that does not exist, into itself, or (while
    /// running) into one that is not running, no console session recorded
    /// live while no `hcc serve` runs. Prints one line per problem (its
    /// code, then what and where) and a summary. Changes nothing. Exits 6
    /// when it found a problem.
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Run a Hetzner Cloud API simulator on this machine, for tests and the
    /// demo.
    ///
    /// Serves the part of the API that hcc and the official hcloud CLI use,
    /// with the real JSON shapes, error envelopes, pagination, label
    /// selectors, actions that take time, a real token bucket behind the
    /// RateLimit-* headers, and fault injection. Prints
    /// `HCLOUD_ENDPOINT=URL HCLOUD_TOKEN=TOKEN` as its first line.
    Sim(SimArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Return once Hetzner accepted the request, without waiting for the
    /// action to finish.
    #[arg(long)]
    pub no_wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Server name.
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub opts: ActionArgs,
}

#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// Print the command's id first (`ID CMD ARG`) and leave closing it to
    /// `hcc done` / `hcc fail`.
    #[arg(long)]
    pub id: bool,
    /// Print the lease handle first (`ID:N CMD ARG`, N counting the
    /// command's leases) and leave closing it to `hcc done ID:N` / `hcc
    /// fail ID:N`: a handle never closes a later lease of the command.
    #[arg(long)]
    pub handle: bool,
    /// Seconds until an unclosed lease returns the command to the queue.
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub lease: i64,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// API token clients must send as `Authorization: Bearer TOKEN`; a
    /// random 64-character one when not given.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Servers to create at start: running, named srv-00001, srv-00002, ...
    /// and labelled `managed=1`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub servers: u32,
    /// Size of the token bucket in requests per hour (`N/h` or `N`); it
    /// refills at that rate. Every request spends a token; an empty bucket
    /// answers 429.
    #[arg(long, value_name = "N/h", default_value = "3600/h")]
    pub rate_limit: String,
    /// How long an action runs before it succeeds, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub action_ms: u64,
    /// Faults to inject into API requests, as KIND:PROBABILITY pairs
    /// joined by commas, e.g. 429:0.1,500:0.05,reset:0.02. Kinds: 429, 500,
    /// 502, 503, 504, timeout (a JSON `timeout` error), reset (the
    /// connection closes without an answer). A fault answers before the
    /// request has any effect.
    #[arg(long, value_name = "SPEC")]
    pub fail: Option<String>,
    /// Extra delay before every API answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,
    /// Make the rate-limit clock, and the minute a console URL can be
    /// opened in, run this many times faster than real time.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Seed for fault injection and generated passwords, for repeatable
    /// runs; random when not given.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Stop when standard input closes, so the simulator never outlives
    /// the test or demo that started it.
    #[arg(long)]
    pub stop_on_eof: bool,
    /// Hand out this websocket (`ws://` or `wss://`, e.g. a websockify in
    /// front of a real VNC server) as every `request_console` answer's
    /// `wss_url`, exactly as given, instead of the simulator's own console.
    #[arg(long, value_name = "URL")]
    pub console_upstream: Option<String>,
    /// The VNC password to hand out with --console-upstream; a random one
    /// per console when not given.
    #[arg(long, value_name = "PW")]
    pub console_password: Option<String>,
    /// Answer the action feed (`GET /servers/actions`) with 404
    /// `not_found`, as some emulators and filtering proxies do.
    #[arg(long)]
    pub no_action_feed: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a setting's effective value (the token is redacted).
    Get {
        /// Setting name, e.g. location.
        key: String,
    },
    /// Check and store a setting. `hcc config set token -` reads the token
    /// from standard input, keeping it out of the process list and history.
    ///
    /// A running `hcc serve` re-reads config.json when it changes: `set`
    /// waits up to 2 s and says on stderr whether it picked the change up
    /// (or that none runs), and names a setting that needs a restart of
    /// `hcc serve` or of the worker.
    Set {
        /// Setting name.
        key: String,
        /// New value; for `token`, `-` reads it from standard input.
        value: String,
    },
    /// Remove a setting from config.json so its default applies; says
    /// whether a running `hcc serve` picked the change up, as `set` does.
    Unset {
        /// Setting name.
        key: String,
    },
    /// Print every setting with its value and where it comes from.
    Show,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8479")]
    pub listen: String,
    /// Run the worker in the same process.
    #[arg(long)]
    pub worker: bool,
    /// Seconds from the end of one of the worker's refresh cycles to the next.
    #[arg(long, value_name = "SECONDS", default_value_t = 100, requires = "worker",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub cycle: u64,
    /// The address customers reach this server at, for console links
    /// (e.g. https://console.example.com); the `public_url` setting, else
    /// http://ADDR.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct VncArgs {
    /// Server name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5900")]
    pub listen: String,
    /// Allow an address beyond this machine; viewers must then give a
    /// one-off VNC password, printed once.
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key and print it once; hcc keeps only its hash.
    ///
    /// Scopes: `read` (servers, commands, status), `act` (read, and queue
    /// actions but `create` and `kill`), `console` (read, console
    /// credentials and one-time console links), `admin` (everything).
    Add {
        /// A name for the key, e.g. the billing system's: letters, digits,
        /// `-`, `_`, `.`.
        name: String,
        /// What the key may do.
        #[arg(long, value_enum)]
        scope: KeyScope,
    },
    /// List the keys: name, scope, created, last used. Never the keys.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a key; requests with it fail from now on, the console links
    /// it made that nobody opened are void, and the console sessions opened
    /// through its links end.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyScope {
    Read,
    Act,
    Console,
    Admin,
}

/// What `done` and `fail` close: a command id, or a lease handle `ID:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRef {
    pub id: i64,
    /// N of a handle: which lease of the command.
    pub lease: Option<i64>,
}

fn parse_lease_ref(text: &str) -> Result<LeaseRef, String> {
    let number = |part: &str| {
        part.parse::<i64>()
            .ok()
            .filter(|n| *n > 0 && part.bytes().all(|b| b.is_ascii_digit()))
    };
    let (id, lease) = match text.split_once(':') {
        Some((id, lease)) => (number(id), number(lease).map(Some)),
        None => (number(text), Some(None)),
    };
    match (id, lease) {
        (Some(id), Some(lease)) => Ok(LeaseRef { id, lease }),
        _ => Err("want a command id (`12`) or a lease handle (`12:3`)".into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;
    use crate::verb::Verb;

    /// `hcc help push` names every verb of verb.rs, with its aliases.
    #[test]
    fn the_push_help_lists_the_vocabulary() {
        let cli = Cli::command();
        let push = cli.find_subcommand("push").expect("push");
        let help = push.get_long_about().expect("long help").to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let list = format!("CMD is one of {}.", Verb::help_list());
        assert!(help.contains(&list), "{help}\n{list}");
    }
}
