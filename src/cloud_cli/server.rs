//! The CLI's verbs on one server: `create`, the power verbs, `kill` (and
//! its confirmation prompt), `settag`/`deltag`, `console`. Each opens the
//! cloud, runs the operation in `cloud::server` and says what it did, as
//! text or one line of JSON.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use serde_json::json;

use super::print_json;
use crate::cloud::{Cloud, console as credentials, server};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::verb::{Power, check_server_name};

pub fn power(
    home: &Home,
    settings: &Settings,
    verb: Power,
    name: &str,
    no_wait: bool,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Command)?;
    let server::Powered {
        server_id,
        action,
        status,
    } = server::power(&mut cloud, verb, name, !no_wait)?;
    if json_out {
        print_json(
            &json!({"name": name, "id": server_id, "action": action.command,
                           "action_id": action.id, "waited": !no_wait, "status": status}),
        )?;
    } else if no_wait {
        crate::output::print(&format!(
            "{name}: {} requested (action {})\n",
            verb.action(),
            action.id
        ))?;
    } else {
        crate::output::print(&format!("{name}: {}, now {status}\n", done(verb)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a power verb did, once its action finished.
fn done(verb: Power) -> &'static str {
    match verb {
        Power::Start => "started",
        Power::Stop => "shut down (ACPI)",
        Power::Force => "powered off",
        Power::Reboot => "rebooted (ACPI)",
        Power::Reset => "reset",
    }
}

pub struct CreateArgs<'a> {
    pub name: &'a str,
    pub server_type: Option<&'a str>,
    pub image: Option<&'a str>,
    pub location: Option<&'a str>,
    pub no_wait: bool,
    pub json: bool,
}

pub fn create(home: &Home, settings: &Settings, args: CreateArgs) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Command)?;
    let name = args.name;
    let request = server::create_request(
        &cloud,
        name,
        args.server_type,
        args.image,
        args.location,
        None,
    );
    let server::Created {
        server_id,
        status,
        root_password,
    } = server::create(&mut cloud, &request, !args.no_wait)?;
    if args.json {
        print_json(&json!({"name": name, "id": server_id, "status": status,
                           "server_type": request.server_type, "image": request.image,
                           "location": request.location,
                           "root_password": root_password}))?;
    } else {
        let mut text = format!(
            "created {name} (id {server_id}, {} {} in {}), {status}\n",
            request.server_type, request.image, request.location
        );
        if let Some(password) = &root_password {
            text.push_str(&format!("root password: {password}\n"));
        }
        crate::output::print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(
    home: &Home,
    settings: &Settings,
    name: &str,
    yes: bool,
    no_wait: bool,
) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    if !yes {
        let (server, _) = server::managed(&cloud, name)?;
        confirm_delete(name, server.id)?;
    }
    let id = server::kill(&cloud, name, !no_wait)?;
    crate::output::print(&format!("deleted {name} (id {id})\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// On a terminal, asks for the name; elsewhere, `--yes` is required.
fn confirm_delete(name: &str, id: i64) -> Result<(), Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Input(format!(
            "refusing to delete `{name}` without --yes (standard input is not a terminal)"
        )));
    }
    eprint!("delete server `{name}` (id {id}) and all its data? type its name to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Input(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() == name {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "not confirmed; `{name}` was not deleted"
        )))
    }
}

/// `settag`: adopt a server (add the managed label).
pub fn settag(home: &Home, settings: &Settings, name: &str) -> Result<ExitCode, Error> {
    label(home, settings, name, true)
}

/// `deltag`: release a server (remove the managed label).
pub fn deltag(home: &Home, settings: &Settings, name: &str) -> Result<ExitCode, Error> {
    label(home, settings, name, false)
}

fn label(home: &Home, settings: &Settings, name: &str, add: bool) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Command)?;
    check_server_name(name).map_err(Error::Input)?;
    let changed = server::set_managed(&mut cloud, name, add)?;
    let said = match (add, changed) {
        (true, true) => "now managed",
        (false, true) => "released",
        (true, false) => "is already managed",
        (false, false) => "is not managed",
    };
    let sep = if changed { ":" } else { "" };
    crate::output::print(&format!("{name}{sep} {said} (label `{}`)\n", cloud.label))?;
    Ok(ExitCode::SUCCESS)
}

/// `console`: fresh credentials, stored and printed as the original did:
/// `<console base URL><wss_url>#<password>`.
pub fn console(
    home: &Home,
    settings: &Settings,
    name: &str,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Console)?;
    let console = credentials::fetch_managed(&cloud, name)?;
    let base = &settings.console_url;
    let url = format!("{base}{}#{}", console.wss_url, console.password);
    if json_out {
        print_json(&json!({"name": name, "id": console.server_id, "url": url,
                           "wss_url": console.wss_url, "password": console.password,
                           "console_at": console.issued_at}))?;
    } else {
        crate::output::print(&format!("{url}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}
