//! Tables as text that answers on its own: each data row becomes one paragraph that repeats
//! the header, `Nama: Ali; Jabatan: Kewangan; Baki cuti: 12`, so a row found by search needs no
//! other row to be understood. Shared by XLSX sheets and CSV files.
//!
//! The header is the first row when it is mostly words (not numbers); in a spreadsheet a few
//! caption rows above a wider header row are allowed and kept as paragraphs. Without a header,
//! a row is its cells joined with ` | `, as in DOCX and HTML tables.

use super::{Block, Blocks, ParseError, ParseLimits};
use crate::text;

/// One row: `(column, normalised text)` for its non-empty cells, in column order.
pub(crate) type Row = Vec<(u32, String)>;

/// Counts rows and cells against [`ParseLimits::max_table_rows`] and
/// [`ParseLimits::max_table_cells`] across a whole file.
pub(crate) struct TableBudget {
    rows: usize,
    cells: usize,
    max_rows: usize,
    max_cells: usize,
}

impl TableBudget {
    pub(crate) fn new(limits: &ParseLimits) -> Self {
        TableBudget {
            rows: 0,
            cells: 0,
            max_rows: limits.max_table_rows,
            max_cells: limits.max_table_cells,
        }
    }

    /// Counts one non-empty cell.
    pub(crate) fn cell(&mut self) -> Result<(), ParseError> {
        self.cells += 1;
        if self.cells > self.max_cells {
            return Err(ParseError::TableTooLarge {
                what: "cells",
                max: self.max_cells,
            });
        }
        Ok(())
    }

    /// Counts one non-empty row.
    pub(crate) fn row(&mut self) -> Result<(), ParseError> {
        self.rows += 1;
        if self.rows > self.max_rows {
            return Err(ParseError::TableTooLarge {
                what: "rows",
                max: self.max_rows,
            });
        }
        Ok(())
    }
}

/// How many caption rows may come before a spreadsheet's header row.
pub(crate) const MAX_CAPTION_ROWS: usize = 5;

/// Turns rows (empty ones already dropped) into paragraphs; `max_captions` rows may precede
/// the header (0 for CSV, where the first row is the header if it is one at all).
pub(crate) fn blocks(rows: &[Row], max_captions: usize, out: &mut Blocks) {
    let header_at = find_header(rows, max_captions);
    let header: &[(u32, String)] = header_at.map_or(&[], |h| rows[h].as_slice());
    for (i, row) in rows.iter().enumerate() {
        match header_at {
            Some(h) if i < h => out.paragraph(&joined(row), None),
            Some(h) if i == h => {}
            // A repeated header row (a printed table's page break) says nothing new.
            Some(_) if same_cells(row, header) => {}
            Some(_) => out.paragraph(&with_header(row, header), None),
            None => out.paragraph(&joined(row), None),
        }
    }
}

/// The header row: within the first `max_captions + 1` rows, the first one that is at least
/// half as wide as the widest of the opening rows (two cells at least, unless the table has
/// one column) and mostly labels: words, or years (`2024` heads a column as often as not).
fn find_header(rows: &[Row], max_captions: usize) -> Option<usize> {
    let opening = &rows[..rows.len().min(20)];
    let widest = opening.iter().map(Vec::len).max()?;
    let need = if widest <= 1 {
        1
    } else {
        widest.div_ceil(2).max(2)
    };
    // A header over nothing is just a row.
    (0..rows
        .len()
        .min(max_captions + 1)
        .min(rows.len().saturating_sub(1)))
        .find(|&i| {
            let row = &rows[i];
            let words = row.iter().filter(|(_, c)| !is_numeric(c)).count();
            let labels = row
                .iter()
                .filter(|(_, c)| !is_numeric(c) || is_year(c))
                .count();
            row.len() >= need && words > 0 && labels * 2 > row.len()
        })
}

/// Numbers, amounts, dates and times: digits with separators and signs only.
fn is_numeric(cell: &str) -> bool {
    cell.chars().any(|c| c.is_ascii_digit())
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || " .,-+%/:()$€£¥".contains(c))
}

fn is_year(cell: &str) -> bool {
    cell.len() == 4
        && cell
            .parse::<u16>()
            .is_ok_and(|y| (1900..=2100).contains(&y))
}

fn same_cells(row: &[(u32, String)], header: &[(u32, String)]) -> bool {
    row.len() == header.len() && row.iter().zip(header).all(|(a, b)| a == b)
}

fn joined(row: &[(u32, String)]) -> String {
    let cells: Vec<&str> = row.iter().map(|(_, c)| c.as_str()).collect();
    cells.join(" | ")
}

/// `Header: value; Header: value`; a cell without a header is its value alone.
fn with_header(row: &[(u32, String)], header: &[(u32, String)]) -> String {
    let mut parts = Vec::with_capacity(row.len());
    for (col, value) in row {
        match header.binary_search_by_key(col, |(c, _)| *c) {
            Ok(h) => parts.push(format!("{}: {value}", header[h].1)),
            Err(_) => parts.push(value.clone()),
        }
    }
    parts.join("; ")
}

/// A cell's text, normalised; `None` when empty.
pub(crate) fn cell_text(raw: &str) -> Option<String> {
    let t = text::normalize(raw);
    (!t.is_empty()).then_some(t)
}

/// Blocks for one table under an optional heading (a sheet name).
pub(crate) fn table_blocks(heading: Option<&str>, rows: &[Row], max_captions: usize) -> Vec<Block> {
    let mut out = Blocks::default();
    if let Some(h) = heading {
        out.heading(1, h, None);
    }
    blocks(rows, max_captions, &mut out);
    out.blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        cells
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, c)| (i as u32, (*c).to_owned()))
            .collect()
    }

    fn texts(rows: &[Row], captions: usize) -> Vec<String> {
        table_blocks(None, rows, captions)
            .into_iter()
            .map(|b| b.text)
            .collect()
    }

    #[test]
    fn rows_repeat_the_header() {
        let rows = [
            row(&["Nama", "Jabatan", "Baki cuti"]),
            row(&["Ali", "Kewangan", "12"]),
            row(&["Siti", "", "3"]),
            row(&["Nama", "Jabatan", "Baki cuti"]),
            row(&["Abu", "HR", "7", "lebih"]),
        ];
        assert_eq!(
            texts(&rows, 0),
            [
                "Nama: Ali; Jabatan: Kewangan; Baki cuti: 12",
                "Nama: Siti; Baki cuti: 3",
                "Nama: Abu; Jabatan: HR; Baki cuti: 7; lebih",
            ]
        );
    }

    #[test]
    fn numeric_first_rows_are_not_headers() {
        let rows = [row(&["1", "2"]), row(&["3", "4"])];
        assert_eq!(texts(&rows, 0), ["1 | 2", "3 | 4"]);
        let years = [row(&["Item", "2023", "2024"]), row(&["Gaji", "10", "11"])];
        assert_eq!(texts(&years, 0), ["Item: Gaji; 2023: 10; 2024: 11"]);
    }

    #[test]
    fn a_caption_above_the_header_is_kept() {
        let rows = [
            row(&["Baki Cuti 2024"]),
            row(&["Nama", "Baki"]),
            row(&["Ali", "12"]),
        ];
        assert_eq!(
            texts(&rows, 0),
            ["Baki Cuti 2024", "Nama | Baki", "Ali | 12"]
        );
        assert_eq!(
            texts(&rows, MAX_CAPTION_ROWS),
            ["Baki Cuti 2024", "Nama: Ali; Baki: 12"]
        );
        // A lone row is a row, not a header.
        assert_eq!(texts(&[row(&["Nama", "Baki"])], 0), ["Nama | Baki"]);
        let one_column = [row(&["Nama"]), row(&["Ali"])];
        assert_eq!(texts(&one_column, 0), ["Nama: Ali"]);
    }
}
