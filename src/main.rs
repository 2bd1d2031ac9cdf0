//! The `hcc` binary: parse the command line, run it, turn the outcome into
//! one `hcc: ...` line on stderr and an exit code. Everything else lives in
//! the library so that integration tests and the man page see the same
//! definitions.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match hcc::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(err),
    };
    match hcc::run(cli) {
        Ok(code) => code,
        Err(err) if err.is_broken_pipe() => {
            // The reader went away (`hcc wait | head -1`): that is how
            // pipelines end on Unix, not a failure worth a message.
            ExitCode::SUCCESS
        }
        Err(err) => {
            // Names in an error may come from Hetzner or a panel: one
            // line, no escape sequences.
            eprintln!("hcc: {}", hcc::output::one_line(&err.to_string()));
            ExitCode::from(err.exit_code())
        }
    }
}

/// Help and version go out as clap renders them; a usage error becomes one
/// `hcc:` line, like every other error, with exit code 2.
fn usage(err: clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
    }
    let text = err.to_string();
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let mut first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    // "the following required arguments were not provided:" names them on
    // the indented lines below it.
    if first.ends_with(':') {
        let named: Vec<&str> = lines
            .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        first = format!("{first} {}", named.join(" "));
    }
    let first: String = first
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    eprintln!("hcc: {first} (see `hcc --help`)");
    ExitCode::from(hcc::error::EXIT_USAGE)
}
