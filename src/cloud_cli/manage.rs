//! The client-area verbs from the terminal (`hcc rebuild`, `hcc
//! reset-password`, ...): checked through the same vocabulary as the
//! queue, run at once, waited for unless `--no-wait`. A root password is
//! printed once, on stdout; `change-type` reports its steps on stderr.

use std::process::ExitCode;

use serde_json::json;

use super::print_json;
use crate::cli::ActionArgs;
use crate::cloud::Cloud;
use crate::cloud::manage::{self, Step};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::store::Source;
use crate::verb::{Command, CommandLine, Manage};

/// Runs verb `cmd` with `words` (the server name first).
pub fn manage(
    home: &Home,
    settings: &Settings,
    cmd: &str,
    words: &[&str],
    opts: &ActionArgs,
) -> Result<ExitCode, Error> {
    let line = CommandLine::from_words(cmd, words).map_err(Error::Input)?;
    let Command::Manage(name, manage) = &line.command else {
        return Err(Error::Input(format!("`{cmd}` is not a client-area verb")));
    };
    let mut cloud = Cloud::open(home, settings, Priority::Command)?;
    if let Manage::ChangeType {
        server_type,
        keep_disk,
    } = manage
    {
        if opts.no_wait {
            return queue(&cloud, &line, opts.json);
        }
        return change_type(&mut cloud, name, server_type, *keep_disk, opts.json);
    }
    let begun = if opts.no_wait {
        manage::begin(&cloud, name, manage)?
    } else {
        manage::run(&mut cloud, name, manage)?
    };
    if opts.json {
        let mut out = begun.result.clone();
        out["name"] = json!(name);
        out["action_id"] = json!(begun.action.id);
        out["waited"] = json!(!opts.no_wait);
        if let Some(password) = &begun.root_password {
            out["root_password"] = json!(password);
        }
        print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let what = if opts.no_wait {
        format!(
            "{} requested (action {})",
            begun.action.command, begun.action.id
        )
    } else {
        done(manage).to_string()
    };
    let mut text = format!("{name}: {what}\n");
    if let Some(password) = &begun.root_password {
        text.push_str(&format!("root password: {password}\n"));
    }
    crate::output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// What a verb did, once its action finished.
fn done(manage: &Manage) -> String {
    match manage {
        Manage::Rebuild { image } => format!("rebuilt from {image}"),
        Manage::ResetPassword => "root password reset".into(),
        Manage::EnableRescue { kind } => {
            format!("rescue system {kind} enabled; it boots at the next reboot")
        }
        Manage::DisableRescue => "rescue system disabled".into(),
        Manage::ChangeType { server_type, .. } => format!("type changed to {server_type}"),
        Manage::SetRdns { ip, hostname } => match hostname {
            Some(host) => format!("reverse DNS of {ip} set to {host}"),
            None => format!("reverse DNS of {ip} set to Hetzner's default"),
        },
        Manage::AttachIso { iso } => format!("ISO {iso} attached"),
        Manage::DetachIso => "ISO detached".into(),
        Manage::CreateImage { .. } => "snapshot made".into(),
        Manage::EnableBackup => "backups enabled".into(),
        Manage::DisableBackup => "backups disabled".into(),
    }
}

/// Queues `line` for the worker once its server is known to be managed.
fn queue(cloud: &Cloud, line: &CommandLine, json_out: bool) -> Result<ExitCode, Error> {
    let Command::Manage(name, _) = &line.command else {
        return Err(Error::Input(format!(
            "`{}` is not a client-area verb",
            line.cmd
        )));
    };
    crate::cloud::server::managed(cloud, name)?;
    let id = cloud.store.queue(line, Source::Cli)?;
    if json_out {
        print_json(&json!({"name": name, "command": id, "waited": false}))?;
    } else {
        crate::output::print(&format!(
            "{name}: `{line}` queued as command {id}; hcc worker runs it\n"
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn change_type(
    cloud: &mut Cloud,
    name: &str,
    server_type: &str,
    keep_disk: bool,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let mut report = |step: Step, _: bool| {
        eprintln!("hcc: {name}: {}", step.words());
    };
    let resized = manage::change_type(cloud, name, server_type, keep_disk, None, &mut report)?;
    if json_out {
        print_json(&json!({
            "name": name, "id": resized.server_id, "action": "change_type",
            "server_type": resized.server_type, "restarted": resized.restarted,
            "forced": resized.forced, "status": resized.status,
        }))?;
    } else {
        crate::output::print(&format!(
            "{name}: type changed to {}{}, now {}\n",
            resized.server_type,
            if resized.forced {
                " (it did not shut down in time: powered off hard)"
            } else {
                ""
            },
            resized.status
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
