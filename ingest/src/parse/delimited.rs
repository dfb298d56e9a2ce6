//! CSV and TSV via the `csv` crate: the delimiter (`,` `;` or tab) is detected from the first
//! lines, quotes follow RFC 4180 (`""` inside a quoted field), rows may differ in length, and
//! the text was already decoded by [`super::decode_text`]. The first row is the header when it
//! is mostly words; each data row becomes one paragraph that repeats it ([`super::table`]).

use super::table::{self, cell_text, Row, TableBudget};
use super::{Blocks, ParseError, ParseLimits, ParsedDocument};

/// Lines looked at to choose the delimiter.
const SNIFF_LINES: usize = 20;

pub(crate) fn parse(input: &str, limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let delimiter = sniff_delimiter(input);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(input.as_bytes());
    let mut budget = TableBudget::new(limits);
    let mut rows: Vec<Row> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ParseError::Csv(e.to_string())),
        }
        let mut row = Row::new();
        for (col, field) in record.iter().enumerate() {
            if let Some(cell) = cell_text(field) {
                budget.cell()?;
                row.push((u32::try_from(col).unwrap_or(u32::MAX), cell));
            }
        }
        if !row.is_empty() {
            budget.row()?;
            rows.push(row);
        }
    }
    let mut out = Blocks::default();
    table::blocks(&rows, 0, &mut out);
    Ok(ParsedDocument {
        blocks: out.blocks,
        ..ParsedDocument::default()
    })
}

/// The candidate that splits the first lines most consistently (the same non-zero count on
/// the most lines; more fields win ties; tab wins a tie over the others). Counting skips quoted
/// text. `,` when nothing splits.
fn sniff_delimiter(input: &str) -> u8 {
    let lines = logical_lines(input, SNIFF_LINES);
    let mut best = (b',', 0usize, 0usize);
    for d in [b'\t', b',', b';'] {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, d)).collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        if first == 0 {
            continue;
        }
        let agreeing = counts.iter().filter(|&&c| c == first).count();
        if (agreeing, first) > (best.1, best.2) {
            best = (d, agreeing, first);
        }
    }
    best.0
}

/// Up to `max` non-blank lines, where a line break inside quotes does not end a line.
fn logical_lines(input: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, b) in input.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                let line = input[start..i].trim_end_matches('\r');
                if !line.trim().is_empty() {
                    out.push(line);
                    if out.len() == max {
                        return out;
                    }
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = &input[start..];
    if !last.trim().is_empty() {
        out.push(last);
    }
    out
}

fn count_outside_quotes(line: &str, delimiter: u8) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delimiter && !quoted {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<String> {
        parse(input, &ParseLimits::default())
            .unwrap()
            .blocks
            .into_iter()
            .map(|b| b.text)
            .collect()
    }

    #[test]
    fn sniffs_the_delimiter() {
        assert_eq!(sniff_delimiter("a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter("a;b;c\n1,5;2;3\n"), b';');
        assert_eq!(sniff_delimiter("a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter("\"x;y\",b\n\"1;2\",3\n"), b',');
        assert_eq!(sniff_delimiter("one column\n"), b',');
        assert_eq!(sniff_delimiter(""), b',');
    }

    #[test]
    fn rows_keep_their_header_and_quotes() {
        let csv = "Nama,Jabatan,Baki cuti\r\nAli,Kewangan,12\r\n\r\n\"Tan, Mei Ling\",\"Sumber \"\"Manusia\"\"\",3\r\n";
        assert_eq!(
            texts(csv),
            [
                "Nama: Ali; Jabatan: Kewangan; Baki cuti: 12",
                "Nama: Tan, Mei Ling; Jabatan: Sumber \"Manusia\"; Baki cuti: 3",
            ]
        );
        let semi = "Nama;Gaji\nAli;1.234,50\n";
        assert_eq!(texts(semi), ["Nama: Ali; Gaji: 1.234,50"]);
        let multiline = "Nama,Nota\nAli,\"baris satu\nbaris dua\"\n";
        assert_eq!(texts(multiline), ["Nama: Ali; Nota: baris satu baris dua"]);
    }

    #[test]
    fn rows_are_bounded() {
        let limits = ParseLimits {
            max_table_rows: 2,
            ..ParseLimits::default()
        };
        let err = parse("a\nb\nc\n", &limits).unwrap_err();
        assert_eq!(err.reason(), "too_large");
        let limits = ParseLimits {
            max_table_cells: 3,
            ..ParseLimits::default()
        };
        let err = parse("a,b\nc,d\n", &limits).unwrap_err();
        assert!(matches!(
            err,
            ParseError::TableTooLarge { what: "cells", .. }
        ));
    }
}
