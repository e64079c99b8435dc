//! The `kmetal` binary: parse arguments, call the library, print, pick the exit code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod alloc;
mod cli;

/// The compiler allocates many small values (YAML and JSON trees) from two
/// threads; mimalloc does that in far fewer instructions than the system's.
#[global_allocator]
static ALLOCATOR: alloc::Mimalloc = alloc::Mimalloc;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use kmetal::diagnostic::{Diagnostics, codes};
use kmetal::project::Project;
use kmetal::report::{self, Format};

/// Colour on a terminal, unless NO_COLOR is set.
fn color(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The whole run happens on a worker of the thread pool, with the stack the
/// main thread would have: then the objects a tenant's jobs make from what the
/// run read are freed on the thread that allocated them, which mimalloc does
/// without the handover it needs for another thread's blocks.
fn main() -> ExitCode {
    // Only this call sets up the global pool, so it cannot already be set.
    rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .build_global()
        .expect("the thread pool is set up once, here");
    rayon::scope(|_| run())
}

fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    let format = match cli.format {
        cli::OutputFormat::Human => Format::Human {
            color: color(std::io::stderr().is_terminal()),
            width: 100,
        },
        cli::OutputFormat::Json => Format::Json,
        cli::OutputFormat::Github => Format::Github,
    };
    if let cli::Command::Tool(tool) = &cli.command {
        run_tool(tool);
        return ExitCode::SUCCESS;
    }
    let (out, removal) = match &cli.command {
        cli::Command::Build { out, removal } => (out.clone(), Some(removal)),
        cli::Command::Validate { removal } | cli::Command::Plan { removal, .. } => {
            (None, Some(removal))
        }
        _ => (None, None),
    };
    let mut project = match Project::open(&cli.dir, out) {
        Ok(project) => project,
        Err(diagnostic) => return fail(&Diagnostics::from(diagnostic), format),
    };
    if let Some(removal) = removal {
        project.allow_removal = removal.allow_removal.iter().cloned().collect();
        project.allow_replace = removal.allow_replace.iter().cloned().collect();
    }
    if let cli::Command::Plan { against, .. } = &cli.command {
        project.against = against.clone();
        project.plan_only = true;
    }
    project.crds = cli.crds.clone();
    project.keep_expanded = matches!(cli.command, cli::Command::Expand { .. });
    let result = match &cli.command {
        cli::Command::Build { .. } => kmetal::build(&project).map(|(compiled, report)| {
            announce_removals(&compiled, "removing");
            eprintln!("kmetal: {}", kmetal::day2::summary(&compiled.plan));
            eprintln!(
                "kmetal: {} tenants, {} files in {}: {} written, {} unchanged, {} deleted",
                compiled.tenants,
                compiled.tree.files().len(),
                compiled.out_dir.display(),
                report.written,
                report.unchanged,
                report.removed
            );
            exit_without_freeing(compiled, ExitCode::SUCCESS)
        }),
        cli::Command::Validate { .. } => kmetal::compile(&project).map(|compiled| {
            announce_removals(&compiled, "removing");
            eprintln!(
                "kmetal: {} tenants, {} files: valid",
                compiled.tenants,
                compiled.tree.files().len()
            );
            exit_without_freeing(compiled, ExitCode::SUCCESS)
        }),
        cli::Command::Check { stat } => kmetal::check(&project).map(|drift| {
            let code = report_drift(&drift, *stat);
            exit_without_freeing(drift, code)
        }),
        cli::Command::Plan { output, .. } => kmetal::compile(&project).map(|compiled| {
            match output {
                cli::PlanFormat::Text => write_out(&kmetal::day2::text(&compiled.plan)),
                cli::PlanFormat::Markdown => write_out(&kmetal::day2::markdown(&compiled.plan)),
                cli::PlanFormat::Json => write_out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&compiled.plan).expect("the plan serializes")
                )),
            }
            let code = if compiled.refusals.has_errors() {
                eprint!("{}", report::render(&compiled.refusals, format));
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
            exit_without_freeing(compiled, code)
        }),
        cli::Command::Expand { tenants } => kmetal::compile(&project)
            .and_then(|compiled| kmetal::expand::text(&compiled.expanded, tenants))
            .map(|text| {
                write_out(&text);
                ExitCode::SUCCESS
            }),
        cli::Command::New { name } => kmetal::scaffold::new_tenant(&project, name).map(|text| {
            write_out(&text);
            ExitCode::SUCCESS
        }),
        cli::Command::Tool(_) => unreachable!("tools ran above"),
    };
    result.unwrap_or_else(|diagnostics| fail(&diagnostics, format))
}

/// The process exits right after: freeing a fleet's worth of trees one by one
/// would only cost time (a tenth of a validate), so the OS takes the memory back.
fn exit_without_freeing<T>(value: T, code: ExitCode) -> ExitCode {
    std::mem::forget(value);
    code
}

/// Write `text` to stdout. A reader that went away (`kmetal expand | head`)
/// ends the output quietly, and the command still exits with its own code;
/// any other failure to write (a full disk) is an error of its own.
fn write_out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("kmetal: cannot write the output: {e}");
            std::process::exit(2);
        }
    }
}

fn run_tool(tool: &cli::Tool) {
    let mut command = cli::Cli::command();
    match tool {
        cli::Tool::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "kmetal", &mut script);
            write_out(&String::from_utf8_lossy(&script));
        }
        cli::Tool::Schema { file } => {
            let kind = match file {
                cli::SchemaFile::Tenant => kmetal::schema::InputKind::Tenant,
                cli::SchemaFile::Site => kmetal::schema::InputKind::Site,
            };
            write_out(&kmetal::schema::input_schema(kind));
        }
        cli::Tool::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .expect("rendering into memory does not fail");
            write_out(&String::from_utf8_lossy(&page));
        }
    }
}

fn announce_removals(compiled: &kmetal::Compiled, verb: &str) {
    for (name, held) in &compiled.removed {
        eprintln!(
            "kmetal: {verb} tenant {name}: its manifests go, Flux deletes its cluster, and VIP {} returns to pool {}",
            held.vip, held.pool
        );
    }
}

/// Print the drift (removals in words first); exit 1 if anything would change.
fn report_drift(drift: &kmetal::Drift, stat: bool) -> ExitCode {
    for (name, held) in &drift.compiled.removed {
        write_out(&format!(
            "tenant {name} is gone from tenants/: building (with --allow-removal {name}) deletes its manifests, Flux deletes its cluster, and VIP {} returns to pool {}\n",
            held.vip, held.pool
        ));
    }
    if drift.changes.is_empty() {
        eprintln!("kmetal: up to date");
        return ExitCode::SUCCESS;
    }
    write_out(&format!(
        "{}\n",
        kmetal::day2::summary(&drift.compiled.plan)
    ));
    if stat {
        write_out(&kmetal::output::drift::stat(&drift.changes));
    } else {
        write_out(&kmetal::output::drift::unified(
            &drift.changes,
            color(std::io::stdout().is_terminal()),
        ));
    }
    eprintln!(
        "kmetal: {} files differ from what `kmetal build` would write",
        drift.changes.len()
    );
    ExitCode::from(1)
}

/// Print the diagnostics; exit 2 when kmetal could not run, else 1.
fn fail(diagnostics: &Diagnostics, format: Format) -> ExitCode {
    eprint!("{}", report::render(diagnostics, format));
    let could_not_run = diagnostics
        .iter()
        .any(|d| d.code == codes::IO || d.code == codes::PROJECT_NOT_FOUND);
    ExitCode::from(if could_not_run { 2 } else { 1 })
}
