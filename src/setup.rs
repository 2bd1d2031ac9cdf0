//! `hcc setup`: the interactive way to fill `config.json`, one question per
//! setting in the order of [`config::KEYS`], like the original's wizard.
//! Values are checked as they are typed (a refused value is asked again);
//! nothing is written until the last question is answered with `y`.
//!
//! With a token set, location, server type and image come with pick lists
//! from the API, in the original's order: locations (from the
//! datacenters), the server types available there, the system images by
//! name. Without a token, or when the API cannot be reached, the questions
//! take free text.

use std::io::{self, BufRead, IsTerminal};
use std::process::ExitCode;

use crate::config::{self, Config, Source};
use crate::error::Error;
use crate::hetzner::budget::Unlimited;
use crate::hetzner::{Client, Token, wire};
use crate::home::Home;

pub fn run(home: &Home) -> Result<ExitCode, Error> {
    let path = home.config_path();
    let mut config = Config::load(&path)?;
    let stdin = io::stdin();
    let terminal = stdin.is_terminal();
    let mut input = stdin.lock();
    say(&format!(
        "hcc setup for {}\nRETURN keeps the value shown, `-` clears it.\n",
        home.root().display()
    ))?;
    let mut catalog = Catalog::default();
    for key in config::KEYS {
        if let Some(choices) = catalog.choices(key.name, &config) {
            let (current, _) = config.display_value(key);
            if let Some(value) = pick(&mut input, key.name, &current, &choices)? {
                config.set(key.name, &value)?;
                continue;
            }
        }
        loop {
            let (shown, source) = config.display_value(key);
            let mut question = format!("\n{} ({})\n", key.title, key.hint);
            if let Source::Env(var) = source {
                question.push_str(&format!(
                    "  note: {var} is set and overrides this setting\n"
                ));
            }
            question.push_str(&format!("  {} [{shown}]: ", key.name));
            say(&question)?;
            let answer = if key.is_secret() && terminal {
                rpassword::read_password().map_err(aborted)?
            } else {
                read_line(&mut input)?
            };
            let answer = answer.trim();
            let outcome = match answer {
                "" => Ok(()),
                "-" => config.unset(key.name),
                value => config.set(key.name, value),
            };
            match outcome {
                Ok(()) => break,
                Err(err) => say(&format!("  {err}\n"))?,
            }
        }
    }
    say("\n")?;
    for key in config::KEYS {
        let (shown, source) = config.display_value(key);
        say(&format!("  {}: {shown} ({source})\n", key.name))?;
    }
    say(&format!("save to {} [y/N]? ", path.display()))?;
    if read_line(&mut input)?.trim().eq_ignore_ascii_case("y") {
        config.save()?;
        say("saved\n")?;
    } else {
        say("not saved\n")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the API offers, fetched once per setup run.
#[derive(Default)]
struct Catalog {
    datacenters: Option<Vec<wire::Datacenter>>,
    server_types: Option<Vec<wire::ServerType>>,
    failed: bool,
}

impl Catalog {
    /// The pick list for a setting, as (value, description) rows.
    fn choices(&mut self, key: &str, config: &Config) -> Option<Vec<(String, String)>> {
        if !matches!(key, "location" | "server_type" | "image") || self.failed {
            return None;
        }
        let client = client(config)?;
        let rows = match key {
            "location" => self.datacenters(&client).map(|dcs| {
                let mut rows: Vec<(String, String)> = Vec::new();
                for dc in dcs {
                    if !rows.iter().any(|(name, _)| *name == dc.location.name) {
                        let l = &dc.location;
                        rows.push((l.name.clone(), format!("{} ({})", l.description, l.city)));
                    }
                }
                rows
            }),
            "server_type" => {
                let location = config.settings().ok()?.location;
                let available: Vec<i64> = self
                    .datacenters(&client)?
                    .iter()
                    .filter(|dc| dc.location.name == location)
                    .flat_map(|dc| dc.server_types.clone().unwrap_or_default().available)
                    .collect();
                self.server_types(&client).map(|types| {
                    types
                        .iter()
                        .filter(|t| available.contains(&t.id) && t.deprecated != Some(true))
                        .map(|t| {
                            let desc = format!(
                                "{} cores, {} GB RAM, {} GB disk, {}",
                                t.cores, t.memory, t.disk, t.architecture
                            );
                            (t.name.clone(), desc)
                        })
                        .collect()
                })
            }
            _ => match client.images() {
                Ok(images) => Some(
                    images
                        .into_iter()
                        .filter_map(|i| i.name.map(|n| (n, i.description)))
                        .collect(),
                ),
                Err(err) => self.give_up(&err),
            },
        };
        rows.filter(|r| !r.is_empty())
    }

    fn datacenters(&mut self, client: &Client) -> Option<&Vec<wire::Datacenter>> {
        if self.datacenters.is_none() {
            match client.datacenters() {
                Ok(dcs) => self.datacenters = Some(dcs),
                Err(err) => return self.give_up(&err),
            }
        }
        self.datacenters.as_ref()
    }

    fn server_types(&mut self, client: &Client) -> Option<&Vec<wire::ServerType>> {
        if self.server_types.is_none() {
            match client.server_types() {
                Ok(types) => self.server_types = Some(types),
                Err(err) => return self.give_up(&err),
            }
        }
        self.server_types.as_ref()
    }

    fn give_up<T>(&mut self, err: &crate::hetzner::Error) -> Option<T> {
        self.failed = true;
        let _ = say(&format!("  (no pick lists: {err}; type the values)\n"));
        None
    }
}

/// A client for the settings being edited, if they hold a token.
fn client(config: &Config) -> Option<Client> {
    let settings = config.settings().ok()?;
    let token = Token::new(settings.token().ok()?.expose().to_string());
    Some(Client::new(&settings.endpoint, token, Box::new(Unlimited)))
}

/// Shows a numbered pick list; returns the chosen value, or None for
/// RETURN (then the free-text question follows).
fn pick(
    input: &mut impl BufRead,
    name: &str,
    current: &str,
    choices: &[(String, String)],
) -> Result<Option<String>, Error> {
    let width = choices.iter().map(|(v, _)| v.len()).max().unwrap_or(0);
    loop {
        let mut text = format!("\n{name} [{current}]: pick one\n");
        for (i, (value, desc)) in choices.iter().enumerate() {
            text.push_str(&format!("  {:>3}  {value:width$}  {desc}\n", i + 1));
        }
        text.push_str("select row (RETURN for no change)? ");
        say(&text)?;
        let answer = read_line(input)?;
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(None);
        }
        match answer.parse::<usize>() {
            Ok(n) if (1..=choices.len()).contains(&n) => return Ok(Some(choices[n - 1].0.clone())),
            _ => say(&format!("  `{answer}` is not a row number\n"))?,
        }
    }
}

fn say(text: &str) -> Result<(), Error> {
    crate::output::print(text)
}

/// One answer; end of input aborts the whole setup unsaved.
fn read_line(input: &mut impl BufRead) -> Result<String, Error> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) => Err(Error::Failed(
            "setup aborted: standard input ended; nothing saved".into(),
        )),
        Ok(_) => Ok(line),
        Err(err) => Err(aborted(err)),
    }
}

fn aborted(err: io::Error) -> Error {
    Error::Failed(format!(
        "setup aborted: cannot read the answer: {err}; nothing saved"
    ))
}
