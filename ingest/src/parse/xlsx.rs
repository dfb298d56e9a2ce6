//! XLSX: a zip of XML parts read through [`super::package`]. The workbook (found through
//! `_rels/.rels`) lists the sheets in order with their names and relationship ids; each
//! worksheet becomes a level-1 heading (its name) followed by one paragraph per non-empty row
//! that repeats the header row ([`super::table`]). The title is `dc:title` from
//! `docProps/core.xml`.
//!
//! Cells: shared strings (`t="s"`, rich text runs joined, phonetic runs dropped), inline strings,
//! booleans, formula results as cached in `<v>` (formulas are never evaluated), numbers as
//! written, except that a number whose cell style is a date or time format is shown as
//! `2024-03-01` / `2024-03-01 09:30` (Excel stores dates as day counts). Error values (`#N/A`)
//! are left out. Rows and cells are counted against [`ParseLimits::max_table_rows`] and
//! [`ParseLimits::max_table_cells`].

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::package::{attr, cdata_of, expect_root, text_of, xml_error, Package, Relationship};
use super::table::{self, cell_text, Row, TableBudget};
use super::{Block, ParseError, ParseLimits, ParsedDocument};

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let mut pkg = Package::open(bytes, limits)?;
    let main = pkg.main_part("xl/workbook.xml")?;
    let workbook = pkg.read_required(&main)?;
    expect_root(&workbook, &main, "workbook")?;
    let (sheets, date1904) = workbook_sheets(&workbook, &main)?;
    let rels = pkg.relationships(&main)?;
    let part_of = |rel_type: &str, fallback: &str| {
        rels.iter()
            .find(|r| r.is_type(rel_type))
            .map_or_else(|| fallback.to_owned(), |r| r.target.clone())
    };
    let shared = match pkg.read(&part_of("sharedStrings", "xl/sharedStrings.xml"))? {
        Some(xml) => shared_strings(&xml),
        None => Vec::new(),
    };
    let styles = match pkg.read(&part_of("styles", "xl/styles.xml"))? {
        Some(xml) => date_styles(&xml),
        None => Vec::new(),
    };
    let ctx = Cells {
        shared: &shared,
        date_styles: &styles,
        date1904,
    };
    let mut budget = TableBudget::new(limits);
    let mut blocks: Vec<Block> = Vec::new();
    let mut resolved = 0usize;
    for sheet in &sheets {
        let Some(rel) = rels
            .iter()
            .find(|r| r.id == sheet.rel_id && r.is_type("worksheet"))
        else {
            continue; // a chart sheet, or a dangling id
        };
        let Some(xml) = pkg.read(&rel.target)? else {
            continue;
        };
        resolved += 1;
        let rows = sheet_rows(&xml, &rel.target, &ctx, &mut budget)?;
        if !rows.is_empty() {
            blocks.extend(table::table_blocks(
                Some(&sheet.name),
                &rows,
                table::MAX_CAPTION_ROWS,
            ));
        }
    }
    if resolved == 0 {
        // No usable workbook listing: read the worksheets the workbook's relationships name.
        for Relationship { target, .. } in rels.iter().filter(|r| r.is_type("worksheet")) {
            if let Some(xml) = pkg.read(target)? {
                let rows = sheet_rows(&xml, target, &ctx, &mut budget)?;
                blocks.extend(table::table_blocks(None, &rows, table::MAX_CAPTION_ROWS));
            }
        }
    }
    Ok(ParsedDocument {
        title: pkg.core_title()?,
        blocks,
        ..ParsedDocument::default()
    })
}

struct Sheet {
    name: String,
    rel_id: String,
}

/// The sheets in workbook order, and whether dates count from 1904.
fn workbook_sheets(xml: &[u8], part: &str) -> Result<(Vec<Sheet>, bool), ParseError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut sheets = Vec::new();
    let mut date1904 = false;
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(part, e))?
        {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"sheet" => {
                    let rel_id = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"id" && a.key.prefix().is_some())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                    if let (Some(name), Some(rel_id)) = (attr(&e, b"name"), rel_id) {
                        sheets.push(Sheet { name, rel_id });
                    }
                }
                b"workbookPr" => {
                    date1904 = attr(&e, b"date1904")
                        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok((sheets, date1904))
}

/// The shared string table: each `si`'s text runs joined, phonetic guides (`rPh`) dropped.
/// A damaged table keeps what was read before the damage.
fn shared_strings(xml: &[u8]) -> Vec<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let (mut in_t, mut in_rph) = (false, 0usize);
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"si" => cur = Some(String::new()),
                b"t" => in_t = true,
                b"rPh" => in_rph += 1,
                _ => {}
            },
            Ok(Event::Empty(e)) if e.local_name().as_ref() == b"si" => out.push(String::new()),
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"si" => out.push(cur.take().unwrap_or_default()),
                b"t" => in_t = false,
                b"rPh" => in_rph = in_rph.saturating_sub(1),
                _ => {}
            },
            Ok(Event::Text(t)) if in_t && in_rph == 0 => {
                if let Some(c) = cur.as_mut() {
                    c.push_str(&text_of(t));
                }
            }
            Ok(Event::CData(t)) if in_t && in_rph == 0 => {
                if let Some(c) = cur.as_mut() {
                    c.push_str(&cdata_of(t));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// For each cell format (`cellXfs/xf`, by index), whether it shows a date or a time.
fn date_styles(xml: &[u8]) -> Vec<DateKind> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut custom: HashMap<u32, DateKind> = HashMap::new();
    let mut xfs = Vec::new();
    let mut in_cell_xfs = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"numFmt" => {
                    if let (Some(id), Some(code)) = (
                        attr(&e, b"numFmtId").and_then(|v| v.parse().ok()),
                        attr(&e, b"formatCode"),
                    ) {
                        custom.insert(id, format_kind(&code));
                    }
                }
                b"cellXfs" => in_cell_xfs = true,
                b"xf" if in_cell_xfs => {
                    let id: u32 = attr(&e, b"numFmtId")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let kind = custom.get(&id).copied().unwrap_or_else(|| builtin_kind(id));
                    xfs.push(kind);
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.local_name().as_ref() == b"cellXfs" => in_cell_xfs = false,
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    xfs
}

/// What a number format shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateKind {
    Number,
    Date,
    DateTime,
    Time,
}

/// The built-in number formats of ECMA-376 §18.8.30 (and the East Asian ones) that show dates
/// or times.
fn builtin_kind(id: u32) -> DateKind {
    match id {
        14..=17 | 27..=31 | 34..=36 | 50..=58 => DateKind::Date,
        22 => DateKind::DateTime,
        18..=21 | 32 | 33 | 45..=47 => DateKind::Time,
        _ => DateKind::Number,
    }
}

/// Reads a custom format code, ignoring quoted text, escapes and `[colour]` sections.
fn format_kind(code: &str) -> DateKind {
    let section = code.split(';').next().unwrap_or("");
    let mut plain = String::new();
    let mut chars = section.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                }
            }
            '\\' | '_' | '*' => {
                chars.next();
            }
            '[' => {
                let inner: String = chars.by_ref().take_while(|&b| b != ']').collect();
                // [h], [mm], [ss]: elapsed time.
                if inner
                    .chars()
                    .all(|c| matches!(c, 'h' | 'H' | 'm' | 'M' | 's' | 'S'))
                {
                    plain.push_str(&inner);
                }
            }
            c => plain.push(c.to_ascii_lowercase()),
        }
    }
    let date = plain.contains('d') || plain.contains('y');
    let time = plain.contains('h') || plain.contains('s');
    // `m` alone is a month in a date and minutes in a time.
    let month_only = !date && !time && plain.contains('m');
    match (date || month_only, time) {
        (true, true) => DateKind::DateTime,
        (true, false) => DateKind::Date,
        (false, true) => DateKind::Time,
        (false, false) => DateKind::Number,
    }
}

/// What cell values are resolved against.
struct Cells<'a> {
    shared: &'a [String],
    date_styles: &'a [DateKind],
    date1904: bool,
}

impl Cells<'_> {
    fn value(&self, kind: &str, style: Option<usize>, v: &str, inline: &str) -> Option<String> {
        match kind {
            "s" => v
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| self.shared.get(i).cloned()),
            "inlineStr" => Some(inline.to_owned()),
            "b" => Some(if v.trim() == "1" { "TRUE" } else { "FALSE" }.to_owned()),
            "e" => None,
            "str" | "d" => Some(v.to_owned()),
            _ => {
                let date_kind = style
                    .and_then(|s| self.date_styles.get(s))
                    .copied()
                    .unwrap_or(DateKind::Number);
                Some(
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|_| date_kind != DateKind::Number)
                        .and_then(|serial| excel_date(serial, date_kind, self.date1904))
                        .unwrap_or_else(|| v.to_owned()),
                )
            }
        }
    }
}

/// Reads a worksheet's rows (non-empty cells only, sparse by column).
fn sheet_rows(
    xml: &[u8],
    part: &str,
    cells: &Cells<'_>,
    budget: &mut TableBudget,
) -> Result<Vec<Row>, ParseError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut rows = Vec::new();
    let mut row: Row = Vec::new();
    let mut next_col = 0u32;
    // The open cell: column, type, style, `<v>` text, inline string text.
    let mut cell: Option<(u32, String, Option<usize>)> = None;
    let (mut v, mut inline) = (String::new(), String::new());
    let (mut in_v, mut in_is_t, mut in_is, mut in_rph) = (false, false, false, 0usize);
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(part, e))?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"row" => {
                    row.clear();
                    next_col = 0;
                }
                b"c" => {
                    let col = attr(&e, b"r").and_then(|r| column(&r)).unwrap_or(next_col);
                    next_col = col.saturating_add(1);
                    let kind = attr(&e, b"t").unwrap_or_default();
                    let style = attr(&e, b"s").and_then(|s| s.parse().ok());
                    cell = Some((col, kind, style));
                    v.clear();
                    inline.clear();
                }
                b"v" => in_v = true,
                b"is" => in_is = true,
                b"t" if in_is => in_is_t = true,
                b"rPh" => in_rph += 1,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == b"c" => {
                let col = attr(&e, b"r").and_then(|r| column(&r)).unwrap_or(next_col);
                next_col = col.saturating_add(1);
            }
            Event::Text(t) if in_v => v.push_str(&text_of(t)),
            Event::Text(t) if in_is_t && in_rph == 0 => inline.push_str(&text_of(t)),
            Event::CData(t) if in_v => v.push_str(&cdata_of(t)),
            Event::CData(t) if in_is_t && in_rph == 0 => inline.push_str(&cdata_of(t)),
            Event::End(e) => match e.local_name().as_ref() {
                b"v" => in_v = false,
                b"is" => in_is = false,
                b"t" => in_is_t = false,
                b"rPh" => in_rph = in_rph.saturating_sub(1),
                b"c" => {
                    if let Some((col, kind, style)) = cell.take() {
                        if let Some(text) = cells
                            .value(&kind, style, &v, &inline)
                            .and_then(|t| cell_text(&t))
                        {
                            budget.cell()?;
                            row.push((col, text));
                        }
                    }
                }
                b"row" if !row.is_empty() => {
                    budget.row()?;
                    row.sort_by_key(|(c, _)| *c);
                    row.dedup_by_key(|(c, _)| *c);
                    rows.push(std::mem::take(&mut row));
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(rows)
}

/// `"C5"` → column 2 (0-based); `None` without letters or past column XFD.
fn column(reference: &str) -> Option<u32> {
    let letters: Vec<u8> = reference
        .bytes()
        .take_while(u8::is_ascii_alphabetic)
        .collect();
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let mut n = 0u32;
    for b in letters {
        n = n * 26 + u32::from(b.to_ascii_uppercase() - b'A' + 1);
    }
    (n <= 16_384).then(|| n - 1)
}

/// An Excel serial day number as `yyyy-mm-dd`, `yyyy-mm-dd hh:mm` or `hh:mm` (seconds when not
/// zero); `None` outside years 1900–9999.
fn excel_date(serial: f64, kind: DateKind, date1904: bool) -> Option<String> {
    if !serial.is_finite() || !(0.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let mut days = serial.trunc() as i64;
    let mut secs = ((serial - serial.trunc()) * 86_400.0).round() as i64;
    if secs >= 86_400 {
        days += 1;
        secs -= 86_400;
    }
    let time = if secs % 60 == 0 {
        format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
    } else {
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    };
    match kind {
        DateKind::Time if days == 0 => return Some(time),
        // An elapsed time past a day (`[h]:mm`) is best left as the number.
        DateKind::Time | DateKind::Number => return None,
        DateKind::Date | DateKind::DateTime => {}
    }
    // Day 0 is 1899-12-31 in the 1900 system, which also counts the 29th of February 1900
    // that never was (day 60); from day 61 on, day n is 1899-12-30 + n.
    let epoch_days = if date1904 {
        days - 24_107 // 1904-01-01 is day 0
    } else if days >= 61 {
        days - 25_569 // 1899-12-30 + n
    } else {
        days - 25_568 // 1899-12-31 + n
    };
    let (y, m, d) = civil_from_days(epoch_days);
    let date = format!("{y:04}-{m:02}-{d:02}");
    Some(if kind == DateKind::Date || secs == 0 {
        date
    } else {
        format!("{date} {time}")
    })
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_from_references() {
        assert_eq!(column("A1"), Some(0));
        assert_eq!(column("c5"), Some(2));
        assert_eq!(column("AA10"), Some(26));
        assert_eq!(column("XFD1"), Some(16_383));
        assert_eq!(column("XFE1"), None);
        assert_eq!(column("ZZZZ1"), None);
        assert_eq!(column("12"), None);
    }

    #[test]
    fn serial_numbers_become_dates() {
        assert_eq!(
            excel_date(45_352.0, DateKind::Date, false).as_deref(),
            Some("2024-03-01")
        );
        assert_eq!(
            excel_date(45_352.395_833_333, DateKind::DateTime, false).as_deref(),
            Some("2024-03-01 09:30")
        );
        assert_eq!(
            excel_date(0.5, DateKind::Time, false).as_deref(),
            Some("12:00")
        );
        assert_eq!(
            excel_date(1.0, DateKind::Date, false).as_deref(),
            Some("1900-01-01")
        );
        assert_eq!(
            excel_date(61.0, DateKind::Date, false).as_deref(),
            Some("1900-03-01")
        );
        assert_eq!(
            excel_date(0.0, DateKind::Date, true).as_deref(),
            Some("1904-01-01")
        );
        assert_eq!(excel_date(-1.0, DateKind::Date, false), None);
        assert_eq!(excel_date(f64::NAN, DateKind::Date, false), None);
    }

    #[test]
    fn format_codes_say_date_or_number() {
        assert_eq!(format_kind("dd/mm/yyyy"), DateKind::Date);
        assert_eq!(format_kind("yyyy-mm-dd hh:mm"), DateKind::DateTime);
        assert_eq!(format_kind("h:mm AM/PM"), DateKind::Time);
        assert_eq!(format_kind("[h]:mm:ss"), DateKind::Time);
        assert_eq!(format_kind("#,##0.00"), DateKind::Number);
        assert_eq!(
            format_kind("\"RM\"#,##0;[Red]-\"RM\"#,##0"),
            DateKind::Number
        );
        assert_eq!(format_kind("General"), DateKind::Number);
        assert_eq!(format_kind("0.0\"d\""), DateKind::Number);
        assert_eq!(builtin_kind(14), DateKind::Date);
        assert_eq!(builtin_kind(2), DateKind::Number);
    }
}
