//! Command-line arguments (clap types only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Compile tenant specs into a Flux-ready tree of Kubernetes manifests.
#[derive(Debug, Parser)]
#[command(name = "kmetal", version, about)]
pub struct Cli {
    /// The kmetal repository (the directory holding kmetal.yaml).
    #[arg(
        short = 'C',
        long = "directory",
        global = true,
        default_value = ".",
        value_name = "DIR"
    )]
    pub dir: PathBuf,

    /// Validate against these CustomResourceDefinitions (a file or a directory,
    /// e.g. from `kubectl get crd -o yaml`) instead of kmetal's schemas, for the kinds they define.
    #[arg(long, global = true, value_name = "PATH")]
    pub crds: Option<PathBuf>,

    /// How problems are printed (on stderr).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Snippets and fixes, coloured on a terminal unless NO_COLOR is set.
    Human,
    /// One JSON object per problem, one per line.
    Json,
    /// GitHub Actions workflow annotations.
    Github,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check everything, then write the output directory and kmetal.lock.
    Build {
        /// Write here instead of the site's `output` directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        removal: Removal,
    },
    /// Check everything and write nothing (for pre-commit hooks).
    Validate {
        #[command(flatten)]
        removal: Removal,
    },
    /// Compare what build would write with the output directory and kmetal.lock; exit 1 on drift.
    Check {
        /// Only list the files that would change, with line counts.
        #[arg(long)]
        stat: bool,
    },
    /// Show what the change does to the running fleet (the previous output),
    /// per tenant and for the platform; exit 1 if any change is refused.
    Plan {
        /// Judge against the output and kmetal.lock at this git ref (e.g.
        /// origin/main) instead of the output directory on disk.
        #[arg(long, value_name = "REF")]
        against: Option<String>,
        /// How the plan is printed (on stdout).
        #[arg(long = "output", value_enum, default_value_t = PlanFormat::Text)]
        output: PlanFormat,
        #[command(flatten)]
        removal: Removal,
    },
    /// Print, as YAML documents, what Cluster API's topology controller creates
    /// for each tenant (all of them, or those named): the KamajiControlPlane,
    /// the KubevirtCluster, and each MachineDeployment with its templates.
    Expand {
        /// Only these tenants.
        tenants: Vec<String>,
    },
    /// Print a new tenant file with the site's defaults written out.
    New {
        /// The tenant's name (a DNS-1123 label).
        name: String,
    },
    #[command(flatten)]
    Tool(Tool),
}

/// Commands that do not read a kmetal repository.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Print the JSON Schema (draft-07) of an input file, for editors.
    Schema {
        #[arg(value_enum)]
        file: SchemaFile,
    },
}

/// Which input file a schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaFile {
    /// A tenant file (tenants/**/*.yaml).
    Tenant,
    /// The site (kmetal.yaml).
    Site,
}

/// How `kmetal plan` prints.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PlanFormat {
    /// One line per change, with what it means.
    Text,
    /// For a pull-request comment: counts first, refusals and destructive
    /// changes first, identical changes grouped across tenants.
    Markdown,
    /// One JSON document (see README).
    Json,
}

/// Consent to delete tenants that kmetal.lock knows and no tenant file defines.
#[derive(Debug, Args)]
pub struct Removal {
    /// Remove this tenant: its manifests go, and Flux deletes its cluster (repeatable).
    #[arg(long = "allow-removal", value_name = "NAME")]
    pub allow_removal: Vec<String>,
    /// Let this tenant's Cluster, Namespace and Kustomization be deleted and
    /// created under a new name or namespace (`datastore/<name>` for a
    /// DataStore, `platform` for the platform's Kustomization; repeatable).
    #[arg(long = "allow-replace", value_name = "NAME")]
    pub allow_replace: Vec<String>,
}
