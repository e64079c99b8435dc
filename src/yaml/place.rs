//! Where a node of an input file is written, in kmetal's own type: the tree
//! is built either by serde-saphyr or straight from the parser's events
//! ([`super::fast`]), and both give the same places.

use serde_saphyr::Location;
use serde_saphyr::granit_parser::Span;

use crate::diagnostic::SourceLocation;

/// A node's line and column (both from 1), and its bytes in the text when
/// known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub line: u64,
    pub column: u64,
    /// Byte offset and length.
    pub bytes: Option<(u64, u64)>,
}

impl Place {
    /// A place that is not known (line 0).
    pub const UNKNOWN: Place = Place {
        line: 0,
        column: 0,
        bytes: None,
    };

    /// The place serde-saphyr gives.
    pub fn of(location: &Location) -> Place {
        let span = location.span();
        Place {
            line: location.line(),
            column: location.column(),
            bytes: span.byte_offset().zip(span.byte_len()),
        }
    }

    /// The place of a parser event, as serde-saphyr makes it of the event's
    /// span: the start's line and column, the bytes from start to end.
    pub fn of_span(span: &Span) -> Place {
        let bytes = (span.start.byte_offset())
            .zip(span.end.byte_offset())
            .filter(|(start, end)| {
                *start <= u32::MAX as usize && end.saturating_sub(*start) <= u32::MAX as usize
            })
            .map(|(start, end)| (start as u64, end.saturating_sub(start) as u64));
        Place {
            line: span.start.line() as u64,
            column: span.start.col() as u64 + 1,
            bytes,
        }
    }

    pub fn in_file(&self, file: &str) -> SourceLocation {
        let (byte_offset, byte_len) = self.bytes.unwrap_or((0, 0));
        SourceLocation {
            file: file.to_string(),
            line: self.line,
            column: self.column,
            byte_offset,
            byte_len,
        }
    }
}
