//! `seglog completions SHELL` and `seglog man`: generated from the same
//! clap definitions the parser uses, so they always match the tool.

use std::io::Write;

use clap::{Args, ValueEnum};
use clap_complete::Shell;

use crate::failure::Failure;

/// The shells completions are generated for.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

// The flags of `seglog completions` (its help is the variant's doc comment
// in main.rs).
#[derive(Args)]
pub(crate) struct CompletionsCommand {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: ShellArg,
}

impl CompletionsCommand {
    /// Writes the completion script for `command` to stdout.
    pub(crate) fn run(&self, command: &mut clap::Command) -> Result<(), Failure> {
        let shell = match self.shell {
            ShellArg::Bash => Shell::Bash,
            ShellArg::Zsh => Shell::Zsh,
            ShellArg::Fish => Shell::Fish,
        };
        let mut script = Vec::new();
        clap_complete::generate(shell, command, "seglog", &mut script);
        std::io::stdout()
            .write_all(&script)
            .map_err(Failure::output)
    }
}

/// Writes the man page (roff) of `command` to stdout.
pub(crate) fn man(command: clap::Command) -> Result<(), Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(Failure::output)?;
    std::io::stdout().write_all(&page).map_err(Failure::output)
}
