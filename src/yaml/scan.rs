//! An input file's tree read line by line, for the block-style files almost
//! every tenant, site and lock is: a tenth of what reading it through the
//! parser's events ([`super::fast`]) costs, which is most of reading a fleet.
//!
//! It reads a narrower subset than [`super::fast`], and reads it exactly as
//! serde-saphyr does with [`super::spec_options`] (the differential tests
//! hold the three together, places included):
//! - ASCII text without tabs, carriage returns, backslashes or document
//!   markers; comment lines and comments after a value;
//! - one block mapping or list, nesting by indentation (a list may sit at
//!   its key's indentation), at most [`MAX_DEPTH`] levels;
//! - keys written plain; values written plain on one line, quoted on one
//!   line, or as a one-line flow list of such scalars, or `[]`, `{}`;
//! - plain scalars of letters, digits, spaces and `-._/~+=@:` only, read by
//!   [`super::fast`]'s rules for what a plain scalar is.
//!
//! Anything else gives `None`, and the file is read by the next reader: this
//! one reports nothing itself.

use super::fast::node;
use super::place::Place;
use super::tree::{Kind, Node};
use serde_saphyr::granit_parser::ScalarStyle;

/// How deep this reader goes (kmetal's input files nest five levels).
const MAX_DEPTH: usize = 16;
/// The most nodes it reads: well inside the input files' budget of 100,000
/// nodes (a 10,000-tenant lock has about 50,000).
const MAX_NODES: usize = 90_000;
/// The longest text it reads: inside the budget's 4 MiB of scalars.
const MAX_BYTES: usize = 2 << 20;

/// A line that holds more than spaces and a comment.
#[derive(Clone, Copy)]
struct Line {
    /// Byte offset of the line's first character.
    start: usize,
    /// Its spaces before the first other character.
    indent: usize,
    /// Byte offset of its end (before the line break).
    end: usize,
    /// Line number, from 1.
    number: u64,
}

struct Reader<'t> {
    text: &'t [u8],
    /// The same text, sliced where `text` is (ASCII: every byte is a character).
    str: &'t str,
    lines: Vec<Line>,
    /// The next line to read.
    at: usize,
    nodes: usize,
}

/// The one document of `text`, or `None` when `text` is outside this
/// reader's subset.
pub fn read(text: &str) -> Option<Vec<Node>> {
    if text.len() > MAX_BYTES {
        return None;
    }
    let bytes = text.as_bytes();
    // One pass over the bytes cuts the lines and refuses what is outside
    // the subset: anything not ASCII, tabs, carriage returns, backslashes.
    let outside = |b: u8| !b.is_ascii() || matches!(b, b'\t' | b'\r' | b'\\');
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = 0;
    loop {
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\n' {
            if outside(bytes[end]) {
                return None;
            }
            end += 1;
        }
        number += 1;
        let line = &bytes[start..end];
        let indent = line.iter().take_while(|b| **b == b' ').count();
        let first = line.get(indent).copied();
        if line.starts_with(b"---") || line.starts_with(b"...") {
            return None;
        }
        if !matches!(first, None | Some(b'#')) {
            lines.push(Line {
                start,
                indent,
                end,
                number,
            });
        }
        if end == bytes.len() {
            break;
        }
        start = end + 1;
    }
    let first = *lines.first()?;
    let mut reader = Reader {
        text: bytes,
        str: text,
        lines,
        at: 0,
        nodes: 0,
    };
    let document = reader.block(first.indent, 0)?;
    (reader.at == reader.lines.len()).then_some(vec![document])
}

impl Reader<'_> {
    /// The block collection whose first line is the next one, at `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Option<Node> {
        let line = self.lines[self.at];
        if self.is_item(line.start + indent, line.end) {
            self.list(indent, depth, false)
        } else {
            self.mapping(line.start + indent, indent, depth)
        }
    }

    /// Whether the line's rest from `at` starts a list item (`-` then a space
    /// or the line's end).
    fn is_item(&self, at: usize, end: usize) -> bool {
        self.text[at] == b'-' && (at + 1 == end || self.text[at + 1] == b' ')
    }

    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES).then_some(())
    }

    /// A block list whose items start at column `indent` of the next lines.
    /// A list at its key's column (`indentless`) is placed where its first
    /// item's content starts, as serde-saphyr places it.
    fn list(&mut self, indent: usize, depth: usize, indentless: bool) -> Option<Node> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.count()?;
        let first = self.lines[self.at];
        let dash = first.start + indent;
        let place = match indentless {
            false => self.place(&first, dash, 0),
            true => {
                let content = dash + 1 + count_spaces(&self.text[dash + 1..first.end]);
                if content == first.end {
                    return None;
                }
                self.place(&first, content, 0)
            }
        };
        let mut items = Vec::new();
        while let Some(&line) = self.lines.get(self.at) {
            let dash = line.start + indent;
            if line.indent != indent || !self.is_item(dash, line.end) {
                break;
            }
            let content = dash + 1 + count_spaces(&self.text[dash + 1..line.end]);
            if content == line.end {
                // `-` alone: the item is the block below it.
                self.at += 1;
                let next = *self.lines.get(self.at)?;
                if next.indent <= indent {
                    return None;
                }
                items.push(self.block(next.indent, depth + 1)?);
            } else if self.is_item(content, line.end) {
                return None;
            } else if self.key_end(content, line.end).is_some() {
                // `- key: value`: a mapping whose keys sit at this column.
                let column = content - line.start;
                items.push(self.mapping(content, column, depth + 1)?);
            } else {
                items.push(self.inline_value(&line, content, indent, depth + 1)?);
            }
        }
        Some(node(place, Kind::Seq(items)))
    }

    /// A block mapping whose first key is at byte `first` of the next line,
    /// and whose other keys start at column `indent` of the lines after it.
    fn mapping(&mut self, first: usize, indent: usize, depth: usize) -> Option<Node> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.count()?;
        let line = self.lines[self.at];
        let place = self.place(&line, first, 0);
        let mut entries = Vec::new();
        let mut key_at = first;
        loop {
            let line = self.lines[self.at];
            let colon = self.key_end(key_at, line.end)?;
            let key = self.plain(&line, key_at, colon)?;
            let value = if colon + 1 == line.end {
                // `key:` at the line's end: a block below, a list at the
                // key's column, or nothing.
                self.at += 1;
                match self.lines.get(self.at) {
                    Some(next) if next.indent > indent => self.block(next.indent, depth + 1)?,
                    Some(next)
                        if next.indent == indent && self.is_item(next.start + indent, next.end) =>
                    {
                        self.list(indent, depth + 1, true)?
                    }
                    _ => {
                        self.count()?;
                        node(self.place(&line, colon, 0), Kind::Null)
                    }
                }
            } else {
                let content = colon + 1 + count_spaces(&self.text[colon + 1..line.end]);
                self.inline_value(&line, content, indent, depth + 1)?
            };
            entries.push((key, value));
            match self.lines.get(self.at) {
                Some(next)
                    if next.indent == indent && !self.is_item(next.start + indent, next.end) =>
                {
                    key_at = next.start + indent;
                }
                Some(next) if next.indent > indent => return None,
                _ => break,
            }
        }
        Some(node(place, Kind::Map(entries)))
    }

    /// Where the plain key starting at `at` ends (its `:`, followed by a space
    /// or the line's end), if the line's rest from `at` is a key.
    fn key_end(&self, at: usize, end: usize) -> Option<usize> {
        let rest = &self.text[at..end];
        let colon = rest.iter().position(|b| *b == b':')?;
        let after = rest.get(colon + 1).copied();
        (colon > 0
            && matches!(after, None | Some(b' '))
            && rest[..colon].iter().all(|b| PLAIN[*b as usize]))
        .then_some(at + colon)
    }

    /// The value written on the line from byte `content` on, ending the line
    /// (a comment may follow); the next line must not continue it.
    fn inline_value(
        &mut self,
        line: &Line,
        content: usize,
        indent: usize,
        depth: usize,
    ) -> Option<Node> {
        if content >= line.end {
            return None;
        }
        let (value, after) = match self.text[content] {
            b'[' => self.flow_list(line, content, depth)?,
            b'{' if self.text.get(content + 1) == Some(&b'}') => {
                self.count()?;
                (
                    node(self.place(line, content, 1), Kind::Map(Vec::new())),
                    content + 2,
                )
            }
            b'\'' | b'"' => self.quoted(line, content)?,
            _ => {
                // A plain scalar runs to a comment or the line's end.
                let mut end = line.end;
                if let Some(hash) = find(&self.text[content..line.end], b" #") {
                    end = content + hash;
                }
                while end > content && self.text[end - 1] == b' ' {
                    end -= 1;
                }
                (self.plain(line, content, end)?, end)
            }
        };
        self.line_ends(line, after)?;
        self.at += 1;
        match self.lines.get(self.at) {
            Some(next) if next.indent > indent => None,
            _ => Some(value),
        }
    }

    /// The line holds only spaces and perhaps a comment after `at`.
    fn line_ends(&self, line: &Line, at: usize) -> Option<()> {
        let rest = &self.text[at..line.end];
        let spaces = count_spaces(rest);
        (spaces == rest.len() || (spaces > 0 && rest[spaces] == b'#')).then_some(())
    }

    /// A one-line flow list of scalars from the `[` at `open`, and the byte
    /// after its `]`.
    fn flow_list(&mut self, line: &Line, open: usize, depth: usize) -> Option<(Node, usize)> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.count()?;
        let place = self.place(line, open, 1);
        let mut items = Vec::new();
        let mut at = open + 1;
        at += count_spaces(&self.text[at..line.end]);
        if self.text.get(at) == Some(&b']') {
            return Some((node(place, Kind::Seq(items)), at + 1));
        }
        loop {
            let (item, after) = match *self.text.get(at)? {
                b'\'' | b'"' => self.quoted(line, at)?,
                _ => {
                    let len = self.text[at..line.end]
                        .iter()
                        .position(|b| matches!(b, b',' | b']' | b' '))?;
                    (self.plain(line, at, at + len)?, at + len)
                }
            };
            items.push(item);
            at = after + count_spaces(&self.text[after..line.end]);
            match self.text.get(at)? {
                b']' => return Some((node(place, Kind::Seq(items)), at + 1)),
                b',' => {
                    at += 1;
                    at += count_spaces(&self.text[at..line.end]);
                    if matches!(self.text.get(at), Some(b']' | b',') | None) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// A quoted scalar from its opening quote at `open` to its closing one on
    /// the same line, and the byte after it.
    fn quoted(&mut self, line: &Line, open: usize) -> Option<(Node, usize)> {
        self.count()?;
        let quote = self.text[open];
        let mut text = String::new();
        let mut at = open + 1;
        loop {
            let rest = &self.text[at..line.end];
            let close = rest.iter().position(|b| *b == quote)?;
            text.push_str(&self.str[at..at + close]);
            at += close + 1;
            // `''` in single quotes is one quote.
            if quote == b'\'' && self.text.get(at) == Some(&b'\'') && at < line.end {
                text.push('\'');
                at += 1;
                continue;
            }
            break;
        }
        let style = match quote {
            b'\'' => ScalarStyle::SingleQuoted,
            _ => ScalarStyle::DoubleQuoted,
        };
        let kind = super::fast::scalar(&text, style)?;
        Some((node(self.place(line, open, at - open), kind), at))
    }

    /// The plain scalar from byte `start` to `end`, read by YAML's rules.
    fn plain(&mut self, line: &Line, start: usize, end: usize) -> Option<Node> {
        self.count()?;
        let bytes = &self.text[start..end];
        let first = *bytes.first()?;
        if !(first.is_ascii_alphanumeric() || matches!(first, b'.' | b'/' | b'~' | b'_'))
            || bytes.last() == Some(&b':')
        {
            return None;
        }
        // Inner spaces and colons, but no `: ` (a key inside a value).
        let mut after_colon = false;
        for &b in bytes {
            if !(PLAIN[b as usize] || (b == b' ' && !after_colon)) {
                return None;
            }
            after_colon = b == b':';
        }
        let kind = super::fast::scalar(&self.str[start..end], ScalarStyle::Plain)?;
        Some(node(self.place(line, start, end - start), kind))
    }

    fn place(&self, line: &Line, at: usize, len: usize) -> Place {
        Place {
            line: line.number,
            column: (at - line.start) as u64 + 1,
            bytes: Some((at as u64, len as u64)),
        }
    }
}

/// The characters a plain scalar here may hold (besides inner spaces).
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'_' | b'/' | b'~' | b'+' | b'=' | b'@' | b':'
            );
        b += 1;
    }
    table
};

fn count_spaces(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| **b == b' ').count()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::fast::tests::agrees_by;

    #[test]
    fn block_files_are_read_as_serde_saphyr_reads_them() {
        let read_here = [
            "apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: t00000\ncontrolPlane:\n  replicas: 3\n  vip: 172.18.0.1\n  certSANs: [t00000.k8s.example.com]\nworkers:\n  - name: md-0\n    replicas: 2\n  - name: md-1\n    replicas: 5\n    machineSize: medium\n",
            "# Written by kmetal.\nversion: 1\ntenants:\n  t00000:\n    pool: pinned\n    vip: \"172.18.0.1\"\n",
            "a: b\nc:\n  - x\n  - 'y'\n  -\n    k: v\nd: [p, \"q\"]\ne:\nf: {}\ng: []\n",
            "- a\n-   d: 1\n    e: 2\n-\n  - f\n",
            "a:\n- b\n- c\nd: e\n",
            "# comment\na: b # trailing\n\n   \nc: 'it''s' # x\n",
            "a: two words\nb: x:y\nc: 1\nd: ~\ne: null\nf: True\n",
            "  a: 1\n  b: 2\n",
            "a:\n  b:\n    c:\n",
            "a: [ x , 'y',\"z\" ]\n",
            "a: b",
            "a:",
        ];
        for text in read_here {
            assert_eq!(agrees_by(read, text), Ok(true), "{text:?}");
        }
        // Outside the subset: read by the next reader.
        let left = [
            "\u{feff}a: b\n",
            "a: 1\r\n",
            "---\na: b\n",
            "a: b\n...\n",
            "a: |\n  one\n",
            "a: b\n  c\n",
            "k: {a: 1}\n",
            "a: [[1]]\n",
            "- - b\n",
            "'a': b\n",
            "a: 'x\n  y'\n",
            "a: &x 1\n",
            "a: *x\n",
            "a: !t 1\n",
            "a: b#c\n",
            "a: [x, ]\n",
            "a: 1.30\n",
            "top\n",
            "",
            "a: é\n",
            "a:   \nb: 1\n",
            "a: # c\n  b: 1\n",
        ];
        for text in left {
            assert!(read(text).is_none(), "{text:?}");
        }
        let nested = |depth: usize| {
            (0..depth)
                .map(|i| format!("{}k:\n", "  ".repeat(i)))
                .collect::<String>()
                + &format!("{}k: v\n", "  ".repeat(depth))
        };
        assert!(read(&nested(MAX_DEPTH - 1)).is_some());
        assert!(read(&nested(MAX_DEPTH)).is_none());
        assert!(read(&format!("a: {}\n", "x".repeat(MAX_BYTES))).is_none());
    }

    #[test]
    fn a_generated_fleet_is_read_line_by_line() {
        // What `benches/gen_fleet.py` writes: the files `build` reads most.
        let tenant = "apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: t00848\ncontrolPlane:\n  vip: 172.18.0.213\n  certSANs: [t00848.k8s.example.com]\nworkers:\n  - name: md-0\n    replicas: 5\n  - name: md-1\n    replicas: 1\n    machineSize: small\n";
        assert_eq!(agrees_by(read, tenant), Ok(true));
        let lock = (0..2000).fold(
            String::from("# Written by `kmetal build`.\nversion: 1\ntenants:\n"),
            |lock, i| {
                lock + &format!(
                    "  t{i:05}:\n    pool: pool-a\n    vip: \"172.16.{}.{}\"\n",
                    i / 250,
                    i % 250 + 1
                )
            },
        );
        assert_eq!(agrees_by(read, &lock), Ok(true));
    }
}
