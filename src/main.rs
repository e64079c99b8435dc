//! The `kmetal` binary: parse arguments, call the library, print, pick the exit code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use kmetal::diagnostic::{Diagnostics, codes};
use kmetal::project::Project;
use kmetal::report::{self, Format};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let format = match cli.format {
        cli::OutputFormat::Human => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            Format::Human {
                color: std::io::stderr().is_terminal() && !no_color,
                width: 100,
            }
        }
        cli::OutputFormat::Json => Format::Json,
        cli::OutputFormat::Github => Format::Github,
    };
    let fail = |diagnostics: &Diagnostics| fail(diagnostics, format);
    let out = match &cli.command {
        cli::Command::Build { out } => out.clone(),
        cli::Command::Validate => None,
    };
    let project = match Project::open(&cli.dir, out) {
        Ok(project) => project,
        Err(diagnostic) => return fail(&Diagnostics::from(diagnostic)),
    };
    match cli.command {
        cli::Command::Build { .. } => match kmetal::build(&project) {
            Ok((compiled, report)) => {
                eprintln!(
                    "kmetal: {} tenants, {} files in {} ({} written, {} unchanged)",
                    compiled.tenants,
                    compiled.tree.files().len(),
                    compiled.out_dir.display(),
                    report.written,
                    report.unchanged
                );
                ExitCode::SUCCESS
            }
            Err(diagnostics) => fail(&diagnostics),
        },
        cli::Command::Validate => match kmetal::compile(&project) {
            Ok(compiled) => {
                eprintln!(
                    "kmetal: {} tenants, {} files: valid",
                    compiled.tenants,
                    compiled.tree.files().len()
                );
                ExitCode::SUCCESS
            }
            Err(diagnostics) => fail(&diagnostics),
        },
    }
}

/// Print the diagnostics; exit 2 when kmetal could not run, else 1.
fn fail(diagnostics: &Diagnostics, format: Format) -> ExitCode {
    eprint!("{}", report::render(diagnostics, format));
    let could_not_run = diagnostics
        .iter()
        .any(|d| d.code == codes::IO || d.code == codes::PROJECT_NOT_FOUND);
    ExitCode::from(if could_not_run { 2 } else { 1 })
}
