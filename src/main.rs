//! The `hcc` binary: parse the command line, run it, turn the outcome into
//! one `hcc: ...` line on stderr and an exit code. Everything else lives in
//! the library so that integration tests and the man page see the same
//! definitions.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hcc::cli::Cli::parse();
    match hcc::run(cli) {
        Ok(code) => code,
        Err(err) if err.is_broken_pipe() => {
            // The reader went away (`hcc wait | head -1`): that is how
            // pipelines end on Unix, not a failure worth a message.
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("hcc: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
