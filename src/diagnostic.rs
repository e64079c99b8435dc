//! Problems found by any stage → one sortable, printable list.
//!
//! Every stage pushes [`Diagnostic`]s into [`Diagnostics`] and goes on with the
//! next entry; the caller decides whether anything was fatal. A diagnostic
//! names the input file and position the user must change, never a location in
//! generated output alone.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Stable diagnostic codes. Scripts match on these; never reuse or rename one.
pub mod codes {
    pub const IO: &str = "kmetal::io";
    pub const PROJECT_NOT_FOUND: &str = "kmetal::project::not-found";
    pub const PROJECT_NOT_A_FILE: &str = "kmetal::project::not-a-file";
    pub const YAML_SYNTAX: &str = "kmetal::yaml::syntax";
    pub const YAML_LIMIT: &str = "kmetal::yaml::limit";
    pub const SPEC_SCHEMA: &str = "kmetal::spec::schema";
    pub const SPEC_API_VERSION: &str = "kmetal::spec::api-version";
    pub const SPEC_INVALID_NAME: &str = "kmetal::spec::invalid-name";
    pub const SPEC_DUPLICATE_NAME: &str = "kmetal::spec::duplicate-name";
    pub const SPEC_UNKNOWN_REFERENCE: &str = "kmetal::spec::unknown-reference";
    pub const SPEC_INVALID_VALUE: &str = "kmetal::spec::invalid-value";
    pub const NETWORK_INVALID_ADDRESS: &str = "kmetal::network::invalid-address";
    pub const NETWORK_VIP_OUTSIDE_POOL: &str = "kmetal::network::vip-outside-pool";
    pub const NETWORK_DUPLICATE_VIP: &str = "kmetal::network::duplicate-vip";
    pub const NETWORK_DUPLICATE_CERT_SAN: &str = "kmetal::network::duplicate-cert-san";
    pub const NETWORK_OVERLAP: &str = "kmetal::network::overlap";
    pub const NETWORK_NO_POOL: &str = "kmetal::network::no-pool";
    pub const NETWORK_POOL_FULL: &str = "kmetal::network::pool-full";
    pub const LOCK_INVALID: &str = "kmetal::lock::invalid";
    pub const LOCK_CONFLICT: &str = "kmetal::lock::conflict";
    pub const LOCK_STALE: &str = "kmetal::lock::stale";
    pub const LOCK_REMOVAL: &str = "kmetal::lock::removal";
    pub const LOCK_DUPLICATE_VIP: &str = "kmetal::lock::duplicate-vip";
    pub const OUTPUT_DANGLING: &str = "kmetal::output::dangling-reference";
    pub const INTERNAL: &str = "kmetal::internal";
    pub const EXPAND_FAILED: &str = "kmetal::expand::failed";
    pub const DAY2_REFUSED: &str = "kmetal::day2::refused";
    pub const STACK_INVALID: &str = "kmetal::stack::invalid";
    pub const TEMPLATE_ERROR: &str = "kmetal::stack::template";
    pub const OUTPUT_SCHEMA: &str = "kmetal::output::schema";
    pub const OUTPUT_CONFLICT: &str = "kmetal::output::conflict";
    pub const OUTPUT_UNSAFE: &str = "kmetal::output::unsafe-directory";
    pub const OUTPUT_CEL: &str = "kmetal::output::cel";
    pub const CRD_INVALID: &str = "kmetal::crds::invalid";
    pub const VARIABLE_UNKNOWN: &str = "kmetal::variables::unknown";
    pub const VARIABLE_MISSING: &str = "kmetal::variables::missing";
    pub const VARIABLE_INVALID: &str = "kmetal::variables::invalid";

    /// Every code, for the uniqueness test and for documentation.
    pub const ALL: &[&str] = &[
        IO,
        PROJECT_NOT_FOUND,
        PROJECT_NOT_A_FILE,
        YAML_SYNTAX,
        YAML_LIMIT,
        SPEC_SCHEMA,
        SPEC_API_VERSION,
        SPEC_INVALID_NAME,
        SPEC_DUPLICATE_NAME,
        SPEC_UNKNOWN_REFERENCE,
        SPEC_INVALID_VALUE,
        NETWORK_INVALID_ADDRESS,
        NETWORK_VIP_OUTSIDE_POOL,
        NETWORK_DUPLICATE_VIP,
        NETWORK_DUPLICATE_CERT_SAN,
        NETWORK_OVERLAP,
        NETWORK_NO_POOL,
        NETWORK_POOL_FULL,
        LOCK_INVALID,
        LOCK_CONFLICT,
        LOCK_STALE,
        LOCK_REMOVAL,
        LOCK_DUPLICATE_VIP,
        OUTPUT_DANGLING,
        INTERNAL,
        STACK_INVALID,
        TEMPLATE_ERROR,
        OUTPUT_SCHEMA,
        OUTPUT_CONFLICT,
        OUTPUT_UNSAFE,
        OUTPUT_CEL,
        CRD_INVALID,
        VARIABLE_UNKNOWN,
        VARIABLE_MISSING,
        VARIABLE_INVALID,
    ];
}

/// Help for a name that is not one of `valid`: the closest one when it is
/// close (edit distance), else the list when it is short.
pub fn did_you_mean(value: &str, what: &str, valid: &[&str]) -> String {
    let closest = valid
        .iter()
        .map(|v| (strsim::levenshtein(value, v), *v))
        .filter(|(distance, v)| *distance <= 2.max(v.len() / 3))
        .min();
    match (closest, valid.len()) {
        (Some((_, v)), _) => format!("did you mean {v:?}?"),
        (None, 0) => format!("there is no {what} to refer to yet"),
        (None, n) if n <= 8 => format!(
            "valid values: {}",
            valid
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, n) => format!("there are {n} valid values; none is close"),
    }
}

/// How bad a diagnostic is. Only errors make a run fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// A position in an input file: 1-based line and column (in characters), plus
/// the byte range for snippet rendering.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceLocation {
    /// Path relative to the kmetal repository root, with `/` separators.
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub byte_offset: u64,
    pub byte_len: u64,
}

impl SourceLocation {
    /// A whole file, without a position inside it.
    pub fn file(file: impl Into<String>) -> Self {
        SourceLocation {
            file: file.into(),
            line: 0,
            column: 0,
            byte_offset: 0,
            byte_len: 0,
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// One problem, with where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// Boxed: keeps `Result<_, Diagnostic>` small.
    pub location: Option<Box<SourceLocation>>,
    pub help: Option<String>,
    /// Other places that take part in the problem (the first holder of a duplicate name).
    pub related: Vec<(SourceLocation, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn at(mut self, location: SourceLocation) -> Self {
        self.location = Some(Box::new(location));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, location: SourceLocation, note: impl Into<String>) -> Self {
        self.related.push((location, note.into()));
        self
    }

    fn sort_key(&self) -> (Option<&SourceLocation>, &str, &str) {
        (self.location.as_deref(), self.code, &self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{severity}[{}]: {}", self.code, self.message)?;
        for (location, note) in &self.related {
            write!(f, "\n  note: {location}: {note}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Proof that an error was recorded. Only [`Diagnostics`] makes one, so a
/// check that drops an entry must hand back the reason it was dropped: an
/// entry can never vanish from the output unreported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Reported(());

/// A position in the list of diagnostics, to ask what was reported since.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

/// The problems of one run, and the text of the files they point into (for snippets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>, BTreeMap<String, Arc<str>>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics::default()
    }

    /// Remember the text of `file`, so that reports can show snippets of it.
    pub fn add_source(&mut self, file: impl Into<String>, text: Arc<str>) {
        self.1.insert(file.into(), text);
    }

    /// The text of `file`, if it was added.
    pub fn source(&self, file: &str) -> Option<&Arc<str>> {
        self.1.get(file)
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Record an error; the proof that the entry it concerns was reported.
    pub fn report(&mut self, diagnostic: Diagnostic) -> Reported {
        debug_assert_eq!(diagnostic.severity, Severity::Error);
        self.0.push(diagnostic);
        Reported(())
    }

    pub fn mark(&self) -> Mark {
        Mark(self.0.len())
    }

    /// The proof that an error was recorded since `mark`, if one was.
    pub fn reported_since_mark(&self, mark: Mark) -> Option<Reported> {
        self.errors_since(mark).then_some(Reported(()))
    }

    /// The proof that an error was recorded at `file`, if one was.
    pub fn error_in(&self, file: &str) -> Option<Reported> {
        self.0
            .iter()
            .any(|d| {
                d.severity == Severity::Error && d.location.as_ref().is_some_and(|l| l.file == file)
            })
            .then_some(Reported(()))
    }

    /// Whether an error was recorded since `mark`.
    pub fn errors_since(&self, mark: Mark) -> bool {
        self.0[mark.0..]
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// The proof that an error was recorded since `mark`. When none was, the
    /// check that dropped the entry has a hole: that is an internal error,
    /// recorded at `at` so that the run fails and says where.
    pub fn reported_since(&mut self, mark: Mark, at: &SourceLocation, what: &str) -> Reported {
        if self.errors_since(mark) {
            return Reported(());
        }
        self.report(internal(at.clone(), what))
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
        // The sources of `other` win, as inserting them would have it; the
        // smaller map goes into the larger (the input files' thousands of
        // sources arrive into an empty list).
        let mut sources = other.1;
        if sources.len() < self.1.len() {
            self.1.extend(sources);
        } else {
            for (file, text) in std::mem::take(&mut self.1) {
                sources.entry(file).or_insert(text);
            }
            self.1 = sources;
        }
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Sorted by file, line, column (diagnostics without a file first), duplicates removed.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.0.dedup();
        self.0
    }

    /// `Ok(value)` when nothing went wrong, else the diagnostics.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok(value)
        }
    }
}

/// A bug of kmetal's, shown as a diagnostic at the input it concerns.
pub fn internal(at: SourceLocation, what: &str) -> Diagnostic {
    Diagnostic::error(
        codes::INTERNAL,
        format!("internal error: {what}, and no check said why"),
    )
    .at(at)
    .help("this is a bug in kmetal: nothing was written; please report it with this file")
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic], BTreeMap::new())
    }
}

impl Diagnostics {
    /// `error: 14 problems in 8 files`.
    pub fn summary(&self) -> String {
        // Counted as printed: identical diagnostics (a site default that many
        // tenants inherit) are one.
        let printed = self.clone().into_sorted();
        let errors = printed
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let mut files: Vec<&str> = printed
            .iter()
            .filter_map(|d| d.location.as_ref().map(|l| l.file.as_str()))
            .collect();
        files.sort_unstable();
        files.dedup();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        format!(
            "error: {} in {}",
            plural(errors, "problem"),
            plural(files.len(), "file")
        )
    }
}

impl fmt::Display for Diagnostics {
    /// One plain block per diagnostic, sorted, then the summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in self.clone().into_sorted() {
            writeln!(f, "{diagnostic}")?;
        }
        write!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extending keeps every source, the extending list's on a clash,
    /// whichever list is the larger.
    #[test]
    fn extending_keeps_the_sources_and_the_newer_text() {
        let with = |files: &[(&str, &str)]| {
            let mut d = Diagnostics::new();
            for (file, text) in files {
                d.add_source(*file, Arc::from(*text));
            }
            d
        };
        for (mine, theirs) in [
            (vec![("a", "old"), ("b", "b")], vec![("a", "new")]),
            (vec![("a", "old")], vec![("a", "new"), ("c", "c")]),
        ] {
            let mut d = with(&mine);
            d.extend(with(&theirs));
            assert_eq!(d.source("a").map(|t| &**t), Some("new"));
            for (file, _) in mine.iter().chain(&theirs) {
                assert!(d.source(file).is_some(), "{file}");
            }
        }
    }

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut seen = std::collections::BTreeSet::new();
        for code in codes::ALL {
            assert!(code.starts_with("kmetal::"), "{code}");
            assert!(seen.insert(code), "duplicate code {code}");
        }
    }

    #[test]
    fn a_drop_without_a_reason_becomes_an_internal_error() {
        let at = SourceLocation::file("tenants/a.yaml");
        let mut all = Diagnostics::new();
        let mark = all.mark();
        let _ = all.reported_since(mark, &at, "tenant a was left out");
        let internal: Vec<_> = all.iter().map(|d| (d.code, d.message.clone())).collect();
        assert_eq!(
            internal,
            [(
                codes::INTERNAL,
                "internal error: tenant a was left out, and no check said why".to_string()
            )]
        );
        let mark = all.mark();
        let _ = all.report(Diagnostic::error(codes::SPEC_SCHEMA, "bad").at(at.clone()));
        let _ = all.reported_since(mark, &at, "tenant a was left out");
        assert_eq!(all.len(), 2, "a reported drop adds nothing");
    }

    #[test]
    fn sorted_by_file_then_line() {
        let at = |file: &str, line| SourceLocation {
            file: file.into(),
            line,
            column: 1,
            byte_offset: 0,
            byte_len: 0,
        };
        let mut all = Diagnostics::new();
        all.push(Diagnostic::error(codes::IO, "c").at(at("tenants/b.yaml", 1)));
        all.push(Diagnostic::error(codes::IO, "b").at(at("tenants/a.yaml", 9)));
        all.push(Diagnostic::error(codes::IO, "a").at(at("tenants/a.yaml", 2)));
        all.push(Diagnostic::error(codes::IO, "a").at(at("tenants/a.yaml", 2)));
        let messages: Vec<_> = all.into_sorted().into_iter().map(|d| d.message).collect();
        assert_eq!(messages, ["a", "b", "c"]);
    }
}
