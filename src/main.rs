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
    let (out, allow_removal) = match &cli.command {
        cli::Command::Build { out, removal } => (out.clone(), removal.allow_removal.clone()),
        cli::Command::Validate { removal } => (None, removal.allow_removal.clone()),
        cli::Command::New { .. } => (None, Vec::new()),
    };
    let mut project = match Project::open(&cli.dir, out) {
        Ok(project) => project,
        Err(diagnostic) => return fail(&Diagnostics::from(diagnostic)),
    };
    project.allow_removal = allow_removal.into_iter().collect();
    let result = match &cli.command {
        cli::Command::Build { .. } => kmetal::build(&project).map(|(compiled, report)| {
            announce_removals(&compiled);
            eprintln!(
                "kmetal: {} tenants, {} files in {} ({} written, {} unchanged)",
                compiled.tenants,
                compiled.tree.files().len(),
                compiled.out_dir.display(),
                report.written,
                report.unchanged
            );
        }),
        cli::Command::Validate { .. } => kmetal::compile(&project).map(|compiled| {
            announce_removals(&compiled);
            eprintln!(
                "kmetal: {} tenants, {} files: valid",
                compiled.tenants,
                compiled.tree.files().len()
            );
        }),
        cli::Command::New { name } => {
            kmetal::scaffold::new_tenant(&project, name).map(|text| print!("{text}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(diagnostics) => fail(&diagnostics),
    }
}

fn announce_removals(compiled: &kmetal::Compiled) {
    for (name, held) in &compiled.removed {
        eprintln!(
            "kmetal: removing tenant {name}: its manifests go, Flux deletes its cluster, and VIP {} returns to pool {}",
            held.vip, held.pool
        );
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
