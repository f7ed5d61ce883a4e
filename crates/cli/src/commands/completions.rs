//! `keyward completions SHELL`: a completion script from the clap definition.

use crate::cli::Cli;
use crate::failure::Failure;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// bash, elvish, fish, powershell or zsh.
    shell: Shell,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    use std::io::Write;
    // Into memory first: `generate` panics when its writer fails (a closed
    // pipe, `keyward completions bash | head`), and memory never does.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "keyward", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}
