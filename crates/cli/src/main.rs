//! `keyward`: manage a keyward deployment's tokens from its configuration
//! file. See docs/cli.md for every command, the JSON shapes and the exit
//! codes.

mod cli;
mod commands;
mod context;
mod failure;
mod output;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help and version on stdout (exit 0) and usage errors
        // on stderr (exit 2).
        Err(e) => {
            let code = if e.use_stderr() {
                failure::UNANSWERED
            } else {
                0
            };
            drop(e.print());
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(
                &format!("cannot start the runtime: {e}"),
                failure::UNANSWERED,
            );
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(&failure.message, failure.code),
    }
}

/// Reports a failure on stderr as one line (nothing for a refusal already
/// printed, such as `verify`'s) and returns its exit code. A reader that
/// went away (`keyward list | head`) is not a failure.
fn fail(message: &str, code: u8) -> ExitCode {
    if message.contains("Broken pipe") {
        return ExitCode::SUCCESS;
    }
    if !message.is_empty() {
        drop(writeln!(std::io::stderr().lock(), "keyward: {message}"));
    }
    ExitCode::from(code)
}
