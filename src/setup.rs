//! `hcc setup`: the interactive way to fill `config.json`, one question per
//! setting in the order of [`config::KEYS`], like the original's wizard.
//! Values are checked as they are typed (a refused value is asked again);
//! nothing is written until the last question is answered with `y`.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::config::{self, Config, Source};
use crate::error::Error;
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
    for key in config::KEYS {
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

fn say(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Output)
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
