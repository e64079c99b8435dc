//! [`Diagnostics`] → text for people (miette snippets), scripts (JSON lines) or
//! GitHub Actions (workflow annotations). Pure formatting: the caller prints.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde_json::json;

use crate::diagnostic::{Diagnostic, Diagnostics, Severity, SourceLocation};

/// How diagnostics are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Snippets with labels; `color` only on a terminal without `NO_COLOR`.
    Human { color: bool, width: usize },
    /// One JSON object per diagnostic, one per line.
    Json,
    /// `::error file=…,line=…::message` workflow commands.
    Github,
}

/// Every diagnostic, sorted by file, line and column, in `format`.
pub fn render(diagnostics: &Diagnostics, format: Format) -> String {
    let sorted = diagnostics.clone().into_sorted();
    let mut out = String::new();
    for diagnostic in &sorted {
        match format {
            Format::Human { color, width } => {
                out += &format!("{}\n", human(diagnostic, diagnostics, color, width))
            }
            Format::Json => out += &format!("{}\n", json_line(diagnostic, diagnostics)),
            Format::Github => out += &format!("{}\n", github_line(diagnostic, diagnostics)),
        }
    }
    if let Format::Human { .. } = format {
        out += &format!("{}\n", diagnostics.summary());
    }
    out
}

/// 1-based line and column (in characters) of the end of a location's span.
fn end_of(location: &SourceLocation, source: Option<&str>) -> (u64, u64) {
    let Some(text) = source.filter(|_| location.byte_len > 0) else {
        return (location.line, location.column);
    };
    let end = ((location.byte_offset + location.byte_len) as usize).min(text.len());
    let before = text.get(..end).unwrap_or(text);
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, column)
}

/// Byte range of a location in its source: its span, else the start of its line.
fn span_in(location: &SourceLocation, text: &str) -> SourceSpan {
    if location.byte_len > 0 || location.byte_offset > 0 {
        return SourceSpan::new(
            (location.byte_offset as usize).into(),
            location.byte_len as usize,
        );
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(location.line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    SourceSpan::new(line_start.into(), 0)
}

/// `text` safe to print on a terminal: control characters (escape sequences
/// could rewrite the screen) become `?` (C0, DEL) or `¿` (C1), the same number
/// of bytes, so that spans still point at the right place.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => c,
            c if c.is_ascii_control() => '?',
            '\u{80}'..='\u{9f}' => '¿',
            c => c,
        })
        .collect()
}

/// A diagnostic with its source, as miette wants it.
struct View<'a> {
    diagnostic: &'a Diagnostic,
    /// For a related place in another file: what it is (shown instead of the message).
    note: Option<String>,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<View<'a>>,
}

impl<'a> View<'a> {
    fn new(diagnostic: &'a Diagnostic, all: &Diagnostics) -> Self {
        let mut view = View::at(diagnostic, diagnostic.location.as_deref(), "here", all);
        for (location, note) in &diagnostic.related {
            if Some(&location.file) == diagnostic.location.as_ref().map(|l| &l.file)
                && view.source.is_some()
            {
                let text = all
                    .source(&location.file)
                    .expect("the view has this file's source");
                view.labels.push(LabeledSpan::new_with_span(
                    Some(note.clone()),
                    span_in(location, text),
                ));
            } else {
                let mut related = View::at(diagnostic, Some(location), note, all);
                related.note = Some(if related.source.is_some() {
                    note.clone()
                } else {
                    format!("{note}: {location}")
                });
                view.related.push(related);
            }
        }
        view
    }

    fn at(
        diagnostic: &'a Diagnostic,
        location: Option<&SourceLocation>,
        label: &str,
        all: &Diagnostics,
    ) -> Self {
        let with_text = location
            .filter(|l| l.line > 0)
            .and_then(|l| all.source(&l.file).map(|t| (l, t)));
        let (source, labels) = match with_text {
            Some((location, text)) => (
                Some(NamedSource::new(location.file.clone(), printable(text))),
                vec![LabeledSpan::new_primary_with_span(
                    Some(label.to_string()),
                    span_in(location, text),
                )],
            ),
            None => (None, Vec::new()),
        };
        View {
            diagnostic,
            note: None,
            source,
            labels,
            related: Vec::new(),
        }
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(note) = &self.note {
            return f.write_str(note);
        }
        match (&self.source, &self.diagnostic.location) {
            (None, Some(location)) => write!(f, "{location}: {}", self.diagnostic.message),
            _ => f.write_str(&self.diagnostic.message),
        }
    }
}

impl std::error::Error for View<'_> {}

impl miette::Diagnostic for View<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.note
            .is_none()
            .then(|| Box::new(self.diagnostic.code) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match (self.diagnostic.severity, &self.note) {
            (_, Some(_)) => miette::Severity::Advice,
            (Severity::Error, None) => miette::Severity::Error,
            (Severity::Warning, None) => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        let help = self
            .diagnostic
            .help
            .as_ref()
            .filter(|_| self.note.is_none());
        help.map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

fn human(diagnostic: &Diagnostic, all: &Diagnostics, color: bool, width: usize) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    handler
        .render_report(&mut out, &View::new(diagnostic, all))
        .expect("rendering into a String does not fail");
    out
}

fn json_line(diagnostic: &Diagnostic, all: &Diagnostics) -> String {
    let location = diagnostic.location.as_deref();
    let (end_line, end_column) =
        location.map_or((0, 0), |l| end_of(l, all.source(&l.file).map(|s| &**s)));
    let related: Vec<_> = diagnostic
        .related
        .iter()
        .map(|(l, note)| json!({"file": l.file, "line": l.line, "column": l.column, "message": note}))
        .collect();
    json!({
        "file": location.map(|l| l.file.as_str()),
        "line": location.map_or(0, |l| l.line),
        "column": location.map_or(0, |l| l.column),
        "endLine": end_line,
        "endColumn": end_column,
        "code": diagnostic.code,
        "severity": match diagnostic.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "message": diagnostic.message,
        "help": diagnostic.help,
        "related": related,
    })
    .to_string()
}

/// GitHub's escaping of a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping of a workflow command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn github_line(diagnostic: &Diagnostic, all: &Diagnostics) -> String {
    let kind = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut properties = Vec::new();
    if let Some(l) = diagnostic.location.as_deref() {
        properties.push(format!("file={}", escape_property(&l.file)));
        if l.line > 0 {
            let (end_line, end_column) = end_of(l, all.source(&l.file).map(|s| &**s));
            properties.push(format!(
                "line={},col={},endLine={end_line},endColumn={end_column}",
                l.line, l.column
            ));
        }
    }
    properties.push(format!("title={}", escape_property(diagnostic.code)));
    let mut message = diagnostic.message.clone();
    for (l, note) in &diagnostic.related {
        message += &format!("\n{l}: {note}");
    }
    if let Some(help) = &diagnostic.help {
        message += &format!("\nhelp: {help}");
    }
    format!(
        "::{kind} {}::{}",
        properties.join(","),
        escape_data(&message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::codes;
    use std::sync::Arc;

    fn sample() -> Diagnostics {
        let text = "name: acme\nmachineSize: meduim\n";
        let at = SourceLocation {
            file: "tenants/a,b.yaml".into(),
            line: 2,
            column: 14,
            byte_offset: 24,
            byte_len: 6,
        };
        let mut all = Diagnostics::new();
        all.add_source("tenants/a,b.yaml", Arc::from(text));
        all.push(
            Diagnostic::error(
                codes::SPEC_UNKNOWN_REFERENCE,
                "unknown machine size \"meduim\"\n100%",
            )
            .at(at)
            .help("did you mean \"medium\"?"),
        );
        all
    }

    #[test]
    fn snippets_never_carry_terminal_escapes() {
        let text = "a: \u{1b}[2J\u{9b}x\n";
        let clean = printable(text);
        assert_eq!(clean.len(), text.len());
        assert!(
            !clean.chars().any(|c| c.is_control() && c != '\n'),
            "{clean:?}"
        );
    }

    #[test]
    fn json_lines_carry_positions() {
        let out = render(&sample(), Format::Json);
        let value: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(value["line"], 2);
        assert_eq!(value["column"], 14);
        assert_eq!(value["endLine"], 2);
        assert_eq!(value["endColumn"], 20);
        assert_eq!(value["code"], "kmetal::spec::unknown-reference");
        assert_eq!(value["help"], "did you mean \"medium\"?");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn github_lines_escape_as_github_does() {
        let out = render(&sample(), Format::Github);
        assert_eq!(
            out,
            "::error file=tenants/a%2Cb.yaml,line=2,col=14,endLine=2,endColumn=20,title=kmetal%3A%3Aspec%3A%3Aunknown-reference::unknown machine size \"meduim\"%0A100%25%0Ahelp: did you mean \"medium\"?\n"
        );
    }

    #[test]
    fn human_shows_the_snippet_and_the_summary() {
        let out = render(
            &sample(),
            Format::Human {
                color: false,
                width: 100,
            },
        );
        assert!(out.contains("machineSize: meduim"), "{out}");
        assert!(out.contains("kmetal::spec::unknown-reference"), "{out}");
        assert!(out.contains("did you mean \"medium\"?"), "{out}");
        assert!(out.ends_with("error: 1 problem in 1 file\n"), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour: {out:?}");
    }
}
