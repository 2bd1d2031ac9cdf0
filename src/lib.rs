//! hcc: the middleware between a hosting panel and the Hetzner Cloud API.
//!
//! `run` resolves the state directory and hands each subcommand to the
//! module that carries it out: a dispatch table, nothing more. Everything a
//! command prints goes through [`output`], so that a closed pipe ends the
//! program quietly.

mod apikey;
pub mod assets;
mod backup;
mod check;
pub mod cli;
pub(crate) mod cloud;
mod cloud_cli;
pub mod config;
mod config_cli;
pub mod console;
mod consumer;
mod demo;
pub mod error;
pub mod hetzner;
pub mod home;
mod http;
pub mod log_format;
pub mod man;
mod metrics;
pub mod output;
mod pickup;
mod queue_cli;
mod restore;
pub mod safe_fs;
mod secret;
pub mod serve;
pub mod server;
mod sessions;
mod setup;
pub mod sim;
pub mod spool;
pub mod store;
mod table;
mod timestamp;
pub mod verb;
pub mod vnc_auth;
mod wakeup;
mod worker;

use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::{Cli, Command, ServeArgs};
use crate::config::Settings;
use crate::error::Error;
use crate::home::Home;
use crate::output::Output;
use crate::store::Store;
use crate::verb::Power;

pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hcc", &mut script);
            Output::new().write_raw(&String::from_utf8_lossy(&script))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            Output::new().write_raw(&man::render())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Sim(args) => return sim::run(args.try_into().map_err(Error::Input)?),
        Command::Demo { quick, .. } => return demo::run(quick),
        _ => {}
    }
    let root = Home::locate(cli.home)?;
    if let Command::Status { json } = cli.command
        && Home::absent(&root)
    {
        // The natural first command creates nothing: without a state
        // directory there is no worker to report on.
        return worker::status::absent(&root, json);
    }
    let home = Home::open(root)?;
    if home.is_new() {
        // A panel may open hcc.db right after `hcc setup`: give it tables.
        Store::open(&home.db_path())?;
    }
    // Read by the commands that use settings alone: the others work on
    // whatever config.json holds, a broken one included.
    let settings = || Settings::load(&home.config_path());
    match cli.command {
        Command::Setup => setup::run(&home),
        Command::Config(cmd) => config_cli::run(&home, cmd),
        Command::Push { id, cmd, args } => queue_cli::push(&home, id, &cmd, &args),
        Command::Pull(lease) => queue_cli::pull(&home, &settings()?, &lease),
        Command::Next(lease) => queue_cli::next(&home, &settings()?, &lease),
        Command::Done { id, result } => queue_cli::done(&home, id, result),
        Command::Fail { id, reason } => queue_cli::fail(&home, id, &reason),
        Command::Put { msg } => queue_cli::put(&home, &settings()?, &msg),
        Command::Wait { progress } => queue_cli::wait(&home, progress.as_deref()),
        Command::Ingest => queue_cli::ingest(&home),
        Command::List { all, json } => cloud_cli::list(&home, &settings()?, all, json),
        Command::Images(a) => cloud_cli::images(&home, &settings()?, a.json),
        Command::Isos(a) => cloud_cli::isos(&home, &settings()?, a.json),
        Command::Snapshots(a) => cloud_cli::snapshots(&home, &settings()?, a.json),
        Command::Types(a) => cloud_cli::server_types(&home, &settings()?, a.json),
        Command::Dc(a) => cloud_cli::datacenters(&home, &settings()?, a.json),
        Command::Locations(a) => cloud_cli::locations(&home, &settings()?, a.json),
        Command::Sync {
            name,
            changes,
            json,
        } => cloud_cli::sync(&home, &settings()?, name.as_deref(), changes, json),
        Command::Create {
            name,
            server_type,
            image,
            location,
            opts,
        } => cloud_cli::create(
            &home,
            &settings()?,
            cloud_cli::CreateArgs {
                name: &name,
                server_type: server_type.as_deref(),
                image: image.as_deref(),
                location: location.as_deref(),
                no_wait: opts.no_wait,
                json: opts.json,
            },
        ),
        Command::Start(a) => cloud_cli::power(
            &home,
            &settings()?,
            Power::Start,
            &a.name,
            a.opts.no_wait,
            a.opts.json,
        ),
        Command::Stop(a) => cloud_cli::power(
            &home,
            &settings()?,
            Power::Stop,
            &a.name,
            a.opts.no_wait,
            a.opts.json,
        ),
        Command::Force(a) => cloud_cli::power(
            &home,
            &settings()?,
            Power::Force,
            &a.name,
            a.opts.no_wait,
            a.opts.json,
        ),
        Command::Reboot(a) => cloud_cli::power(
            &home,
            &settings()?,
            Power::Reboot,
            &a.name,
            a.opts.no_wait,
            a.opts.json,
        ),
        Command::Reset(a) => cloud_cli::power(
            &home,
            &settings()?,
            Power::Reset,
            &a.name,
            a.opts.no_wait,
            a.opts.json,
        ),
        Command::Rebuild { name, image, opts } => {
            cloud_cli::manage(&home, &settings()?, "rebuild", &[&name, &image], &opts)
        }
        Command::ResetPassword(a) => {
            cloud_cli::manage(&home, &settings()?, "reset-password", &[&a.name], &a.opts)
        }
        Command::EnableRescue {
            name,
            rescue_type,
            opts,
        } => {
            let mut words = vec![name.as_str()];
            words.extend(rescue_type.as_deref());
            cloud_cli::manage(&home, &settings()?, "enable-rescue", &words, &opts)
        }
        Command::DisableRescue(a) => {
            cloud_cli::manage(&home, &settings()?, "disable-rescue", &[&a.name], &a.opts)
        }
        Command::ChangeType {
            name,
            server_type,
            keep_disk,
            no_wait,
            json,
        } => {
            let mut words = vec![name.as_str(), server_type.as_str()];
            if keep_disk {
                words.push(crate::verb::KEEP_DISK);
            }
            let opts = cli::ActionArgs { no_wait, json };
            cloud_cli::manage(&home, &settings()?, "change-type", &words, &opts)
        }
        Command::SetRdns {
            name,
            ip,
            hostname,
            opts,
        } => {
            let mut words = vec![name.as_str(), ip.as_str()];
            words.extend(hostname.as_deref());
            cloud_cli::manage(&home, &settings()?, "set-rdns", &words, &opts)
        }
        Command::AttachIso { name, iso, opts } => {
            cloud_cli::manage(&home, &settings()?, "attach-iso", &[&name, &iso], &opts)
        }
        Command::DetachIso(a) => {
            cloud_cli::manage(&home, &settings()?, "detach-iso", &[&a.name], &a.opts)
        }
        Command::CreateImage {
            name,
            description,
            opts,
        } => {
            let mut words = vec![name.as_str()];
            words.extend(description.as_deref());
            cloud_cli::manage(&home, &settings()?, "create-image", &words, &opts)
        }
        Command::EnableBackup(a) => {
            cloud_cli::manage(&home, &settings()?, "enable-backup", &[&a.name], &a.opts)
        }
        Command::DisableBackup(a) => {
            cloud_cli::manage(&home, &settings()?, "disable-backup", &[&a.name], &a.opts)
        }
        Command::Kill { name, yes, no_wait } => {
            cloud_cli::kill(&home, &settings()?, &name, yes, no_wait)
        }
        Command::Settag { name } => cloud_cli::settag(&home, &settings()?, &name),
        Command::Deltag { name } => cloud_cli::deltag(&home, &settings()?, &name),
        Command::Console { name, json } => cloud_cli::console(&home, &settings()?, &name, json),
        Command::Metrics {
            name,
            types,
            since,
            json,
        } => cloud_cli::metrics(&home, &settings()?, &name, &types, &since, json),
        Command::Vnc(args) => console::bridge::run(&home, &settings()?, &args),
        Command::Worker { cycle } => {
            let settings = settings()?;
            log_format::set(settings.log_format);
            worker::run(&home, &settings, Duration::from_secs(cycle))
        }
        Command::Status { json } => {
            // A configuration that does not load hides nothing else of the
            // status: the reserve shown is then the default.
            let share = settings().map_or(crate::hetzner::budget::DEFAULT_COMMAND_SHARE, |s| {
                s.command_share()
            });
            worker::status::run(&home, share, json)
        }
        Command::Serve(args) => {
            let settings = settings()?;
            log_format::set(settings.log_format);
            // Held for the server's life: `hcc restore` and `hcc check`
            // see that one runs (worker/lock.rs).
            let _serving = worker::ServeLock::share(&worker::serve_lock_path(&home))?;
            serve::run(&home, &settings, serve_options(args))
        }
        Command::Backup { file, force, json } => backup::run(&home, &file, force, json),
        Command::Restore { file, json } => restore::run(&home, &file, json),
        Command::Check { json } => check::run(&home, json),
        Command::Apikey(cmd) => apikey::run(&home, cmd),
        Command::Sessions {
            live,
            json,
            limit,
            connections,
        } => sessions::list(&home, live, json, limit, connections),
        Command::Revoke { name } => sessions::revoke(&home, &name),
        Command::Suspend { name } => sessions::suspend(&home, &name),
        Command::Resume { name } => sessions::resume(&home, &name),
        Command::Completions { .. } | Command::Man | Command::Sim(_) | Command::Demo { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `hcc serve`'s flags as the options `serve::run` takes.
fn serve_options(args: ServeArgs) -> serve::Options {
    serve::Options {
        listen: args.listen,
        worker: args.worker.then(|| Duration::from_secs(args.cycle)),
        public_url: args.public_url,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["hcc", "serve"].into_iter().chain(args.iter().copied()))
            .expect("valid arguments");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        args
    }

    #[test]
    fn serve_flags_become_serve_options() {
        let options = serve_options(serve_args(&["--worker", "--cycle", "5"]));
        assert_eq!(options.worker, Some(Duration::from_secs(5)));
        assert_eq!(options.listen, "127.0.0.1:8479");
        let options = serve_options(serve_args(&["--public-url", "https://c.example"]));
        assert_eq!(options.worker, None);
        assert_eq!(options.public_url.as_deref(), Some("https://c.example"));
    }
}
