//! `hcc sim`: a Hetzner Cloud API simulator. (Being written.)

use std::process::ExitCode;

use crate::cli::SimArgs;
use crate::error::Error;

pub fn run(args: SimArgs) -> Result<ExitCode, Error> {
    let _ = args;
    Err(Error::Failed("the simulator is not built yet".into()))
}
