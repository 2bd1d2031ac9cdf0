//! `hcc config get|set|unset|show`: reads and writes `config.json` and
//! tells a running `hcc serve` what it will pick up.

use std::io::{self, Read};
use std::process::ExitCode;

use crate::cli::ConfigCommand;
use crate::config::{self, Config};
use crate::error::Error;
use crate::home::Home;
use crate::output::Output;
use crate::pickup;

pub fn run(home: &Home, cmd: ConfigCommand) -> Result<ExitCode, Error> {
    let mut config = Config::load(&home.config_path())?;
    let mut out = Output::new();
    match cmd {
        ConfigCommand::Get { key } => {
            let key = config::key(&key)?;
            let (value, _) = config.display_value(key);
            out.line(&value)?;
        }
        ConfigCommand::Set { key, value } => {
            let value = if value == "-" && key == "token" {
                read_stdin_line()?
            } else {
                value
            };
            config.set(&key, &value)?;
            config.save()?;
            pickup::report(home, &key);
        }
        ConfigCommand::Unset { key } => {
            config.unset(&key)?;
            config.save()?;
            pickup::report(home, &key);
        }
        ConfigCommand::Show => {
            let width = config::KEYS.iter().map(|k| k.name.len()).max().unwrap_or(0);
            for key in config::KEYS {
                let (value, source) = config.display_value(key);
                out.line(&format!("{:width$}  {value}  ({source})", key.name))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one line from stdin (a token for `config set token -`).
fn read_stdin_line() -> Result<String, Error> {
    let mut text = String::new();
    io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::Input(format!("cannot read standard input: {e}")))?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}
