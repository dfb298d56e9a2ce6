//! HTML via `scraper` (html5ever): `h1`–`h6` become headings, block elements end paragraphs,
//! table rows become `cell | cell` paragraphs, and `script`, `style`, `nav`, `noscript`,
//! `template`, `svg` and `iframe` are dropped. The title is `<title>`, else the first `h1`.
//!
//! The tree is walked iteratively, so deep nesting cannot overflow the stack; past
//! [`ParseLimits::max_depth`] the structure is flattened and only the text is kept.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

use super::{Blocks, ParseLimits, ParsedDocument};
use crate::text;

const SKIPPED: &[&str] = &[
    "script", "style", "nav", "noscript", "template", "svg", "iframe", "object",
];

const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "hr",
    "html",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "ul",
];

/// `input` without a leading `<!DOCTYPE … [ internal subset ]>`. HTML parsers end a
/// doctype at its first `>`, so the rest of an XML-style internal subset (entity
/// declarations, the closing `]>`) would come out as text.
fn without_internal_subset(input: &str) -> &str {
    let start = input.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let is_doctype = start
        .get(..9)
        .is_some_and(|d| d.eq_ignore_ascii_case("<!doctype"));
    if !is_doctype {
        return input;
    }
    let head_end = start.find('>').unwrap_or(start.len());
    let Some(open) = start[..head_end].find('[') else {
        return input;
    };
    let subset = &start[open..];
    let mut from = 0;
    while let Some(close) = subset[from..].find(']') {
        let after = subset[from + close + 1..].trim_start();
        if let Some(rest) = after.strip_prefix('>') {
            return rest;
        }
        from += close + 1;
    }
    input
}

pub(crate) fn parse(input: &str, limits: &ParseLimits) -> ParsedDocument {
    let html = Html::parse_document(without_internal_subset(input));
    let mut state = State::default();
    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    state.depth += 1;
                    state.open(el.name(), limits);
                }
                Node::Text(t) => state.text(t),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    state.close(el.name(), limits);
                    state.depth = state.depth.saturating_sub(1);
                }
            }
        }
    }
    state.flush();
    let title = match (state.title, state.first_h1) {
        (Some(t), Some(h1)) if is_site_suffixed(&t, &h1) => Some(h1),
        (t, h1) => t.or(h1),
    };
    ParsedDocument {
        title,
        blocks: state.out.blocks,
        ..ParsedDocument::default()
    }
}

#[derive(Default)]
struct State {
    out: Blocks,
    buf: String,
    depth: usize,
    /// Depth of the outermost skipped element we are inside, if any.
    skip_at: Option<usize>,
    /// Collecting `<title>`.
    in_title: bool,
    title_buf: String,
    title: Option<String>,
    first_h1: Option<String>,
    heading: Option<(u8, usize)>,
    table_depth: usize,
    row: Option<Vec<String>>,
    cell: Option<String>,
}

impl State {
    fn structural(&self, limits: &ParseLimits) -> bool {
        self.depth <= limits.max_depth
    }

    fn open(&mut self, name: &str, limits: &ParseLimits) {
        if self.skip_at.is_some() {
            return;
        }
        if name == "title" && self.title.is_none() {
            self.in_title = true;
            self.skip_at = Some(self.depth);
            return;
        }
        if SKIPPED.contains(&name) {
            self.skip_at = Some(self.depth);
            return;
        }
        if !self.structural(limits) {
            self.buf.push(' ');
            return;
        }
        if name == "table" {
            self.table_depth += 1;
        }
        if self.table_depth == 1 && self.cell.is_none() {
            match name {
                "tr" => {
                    self.flush();
                    self.row = Some(Vec::new());
                    return;
                }
                "td" | "th" if self.row.is_some() => {
                    self.cell = Some(String::new());
                    return;
                }
                _ => {}
            }
        }
        if self.cell.is_some() {
            self.push_text(" ");
            return;
        }
        if let Some(level) = heading_level(name) {
            if self.heading.is_none() {
                self.flush();
                self.heading = Some((level, self.depth));
            }
        } else if name == "br" || (BLOCKS.contains(&name) && self.heading.is_some()) {
            self.buf.push(' ');
        } else if BLOCKS.contains(&name) {
            self.flush();
        }
    }

    fn close(&mut self, name: &str, limits: &ParseLimits) {
        if let Some(at) = self.skip_at {
            if at == self.depth {
                self.skip_at = None;
                if self.in_title {
                    self.in_title = false;
                    let t = text::normalize(&std::mem::take(&mut self.title_buf));
                    self.title = (!t.is_empty()).then_some(t);
                }
            }
            return;
        }
        if !self.structural(limits) {
            self.buf.push(' ');
            return;
        }
        if self.table_depth == 1 {
            match name {
                "td" | "th" if self.cell.is_some() => {
                    if let (Some(cell), Some(row)) = (self.cell.take(), self.row.as_mut()) {
                        row.push(text::normalize(&cell));
                    }
                    return;
                }
                "tr" if self.cell.is_none() => {
                    if let Some(row) = self.row.take() {
                        if row.iter().any(|c| !c.is_empty()) {
                            self.out.paragraph(&row.join(" | "), None);
                        }
                    }
                    return;
                }
                _ => {}
            }
        }
        if name == "table" {
            self.table_depth = self.table_depth.saturating_sub(1);
        }
        if self.cell.is_some() {
            self.push_text(" ");
            return;
        }
        if let Some((level, at)) = self.heading {
            if at == self.depth {
                self.heading = None;
                let t = std::mem::take(&mut self.buf);
                if level == 1 && self.first_h1.is_none() {
                    let n = text::normalize(&t);
                    self.first_h1 = (!n.is_empty()).then_some(n);
                }
                self.out.heading(level, &t, None);
                return;
            }
        }
        if BLOCKS.contains(&name) && self.heading.is_none() {
            self.flush();
        }
    }

    fn text(&mut self, t: &str) {
        if self.in_title {
            self.title_buf.push_str(t);
        } else if self.skip_at.is_none() {
            self.push_text(t);
        }
    }

    fn push_text(&mut self, t: &str) {
        match self.cell.as_mut() {
            Some(cell) => cell.push_str(t),
            None => self.buf.push_str(t),
        }
    }

    fn flush(&mut self) {
        let t = std::mem::take(&mut self.buf);
        self.out.paragraph(&t, None);
    }
}

/// `"Policy name – Site name"` or `"Site | Policy name"` where the h1 is `"Policy name"`:
/// the h1 is the document's own name.
fn is_site_suffixed(title: &str, h1: &str) -> bool {
    const SEPARATORS: &[char] = &['–', '—', '-', '|', ':', '·', '•'];
    let after = title.strip_prefix(h1).map(str::trim_start);
    let before = title.strip_suffix(h1).map(str::trim_end);
    after.is_some_and(|a| a.starts_with(SEPARATORS))
        || before.is_some_and(|b| b.ends_with(SEPARATORS))
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doctype_internal_subset_is_not_text() {
        let html = "<!DOCTYPE html [\n  <!ENTITY x \"SYSTEM file:///etc/passwd\">\n]>\n\
                    <html><body><p>Dasar cuti.</p></body></html>";
        let doc = parse(html, &ParseLimits::default());
        assert_eq!(summary(&doc), [(None, "Dasar cuti.")]);
        // Without a subset, or with no closing "]>", nothing is cut.
        let plain = "<!doctype html><p>a</p>";
        assert_eq!(without_internal_subset(plain), plain);
        let open = "<!DOCTYPE x [ <p>b</p>";
        assert_eq!(without_internal_subset(open), open);
    }

    fn summary(doc: &ParsedDocument) -> Vec<(Option<u8>, &str)> {
        doc.blocks
            .iter()
            .map(|b| (b.heading_level(), b.text.as_str()))
            .collect()
    }

    #[test]
    fn headings_paragraphs_and_tables() {
        let html = r#"<!doctype html><html><head><title>Dasar  Cuti</title>
            <style>p { color: red }</style><script>var x = "no";</script></head>
            <body><nav><a href="/">Home</a></nav>
            <h1>Cuti <em>Tahunan</em></h1>
            <p>Pekerja layak<br>mendapat cuti &amp; elaun.</p>
            <div>Teks <b>tebal</b><div>dalam</div></div>
            <table><tr><th>Gred</th><th>Hari</th></tr><tr><td>41</td><td><p>25</p></td></tr></table>
            <h2>Kelayakan</h2><ul><li>satu</li><li>dua</li></ul>
            <noscript>enable js</noscript></body></html>"#;
        let doc = parse(html, &ParseLimits::default());
        assert_eq!(doc.title.as_deref(), Some("Dasar Cuti"));
        assert_eq!(
            summary(&doc),
            [
                (Some(1), "Cuti Tahunan"),
                (None, "Pekerja layak mendapat cuti & elaun."),
                (None, "Teks tebal"),
                (None, "dalam"),
                (None, "Gred | Hari"),
                (None, "41 | 25"),
                (Some(2), "Kelayakan"),
                (None, "satu"),
                (None, "dua"),
            ]
        );
    }

    #[test]
    fn site_name_is_dropped_from_the_title() {
        let html = "<title>Cuti Sakit – Syarikat ABC</title><h1>Cuti Sakit</h1><p>x</p>";
        let doc = parse(html, &ParseLimits::default());
        assert_eq!(doc.title.as_deref(), Some("Cuti Sakit"));
        let html = "<title>Cuti Sakit dan Perubatan</title><h1>Cuti Sakit</h1><p>x</p>";
        let doc = parse(html, &ParseLimits::default());
        assert_eq!(doc.title.as_deref(), Some("Cuti Sakit dan Perubatan"));
    }

    #[test]
    fn title_falls_back_to_first_h1() {
        let doc = parse("<h2>B</h2><h1>A</h1><p>x</p>", &ParseLimits::default());
        assert_eq!(doc.title.as_deref(), Some("A"));
    }

    #[test]
    fn deep_nesting_is_flattened() {
        let html = format!("{}deep{}", "<div>".repeat(3_000), "</div>".repeat(3_000));
        let doc = parse(&html, &ParseLimits::default());
        assert_eq!(summary(&doc), [(None, "deep")]);
    }
}
