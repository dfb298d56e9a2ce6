//! PDF via `lopdf` + `pdf-extract`, one page at a time so page numbers survive.
//!
//! `pdf_extract::extract_text_from_mem_by_pages` stops at the first page that fails, so instead
//! the document is loaded once with `lopdf::Document::load_mem` and each page is rendered with
//! `pdf_extract::output_doc_page` into a `PlainTextOutput`. Loading and every page run under
//! `catch_unwind`: a page that errors or panics is skipped and the rest are kept. A document
//! lopdf can only open with a password is [`ParseError::Encrypted`] (an empty user password is
//! tried automatically by lopdf). Page text is NFKC-normalised, grouped into paragraphs on
//! blank lines, de-hyphenated, and headings are guessed conservatively.
//!
//! `catch_unwind` cannot stop a stack overflow, so each page is first checked for the shapes
//! that make pdf-extract recurse without end (cyclic or very deep form XObjects, a looping page
//! tree) and skipped if found. Other endless loops or overflows are still possible in lopdf or
//! pdf-extract: a worker process with limits is the robust answer for untrusted PDFs.
//!
//! A page without a text layer (fewer than [`MIN_TEXT_LAYER_CHARS`] letters and digits) that
//! paints an image or form XObject is a scanned page: with [`ParseLimits::ocr`] set it is
//! rendered and read by [`super::ocr`], and its number is listed in
//! [`ParsedDocument::ocr_pages`]. When a PDF yields no text at all, the reason says why: OCR
//! unavailable (`ocr_unavailable`), OCR out of time on every page (`timeout`), or `no_text`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{Dictionary, Document, Object, ObjectId};
use pdf_extract::PlainTextOutput;

use super::ocr::{OcrFailure, OcrRun};
use super::{
    blocks_from_paras, panic_message, paras_from_lines, Block, Para, ParseError, ParseLimits,
    ParsedDocument,
};
use crate::text;

/// A page with fewer letters and digits than this in its text layer has none worth keeping
/// (a scanner's page number or stamp) and is OCR'd when it paints an image.
const MIN_TEXT_LAYER_CHARS: usize = 16;

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let doc = load(bytes)?;
    let pages = catch_unwind(AssertUnwindSafe(|| doc.get_pages()))
        .map_err(|p| ParseError::Panicked(panic_message(&*p)))?;
    let TextLayer {
        mut pages_paras,
        failed,
        last_failure,
        scanned,
    } = read_pages(&doc, &pages);
    let ocr = match (&limits.ocr, scanned.is_empty()) {
        (Some(opts), false) => ocr_pages(bytes, &doc, &scanned, opts, &mut pages_paras),
        _ => OcrOutcome::default(),
    };
    drop_running_lines(&mut pages_paras);
    drop_numbered_running_lines(&mut pages_paras);
    let mut paras = Vec::new();
    for (_, mut page_paras) in pages_paras {
        drop_page_numbers(&mut page_paras);
        paras.extend(page_paras);
    }
    let mut blocks = blocks_from_paras(paras, true);
    if blocks.is_empty() {
        return Err(no_text_error(ocr, failed, pages.len(), last_failure));
    }
    warn_unread_pages(failed, pages.len(), &last_failure, &ocr);
    let title = info_title(&doc).or_else(|| first_heading(&blocks));
    if let Some(t) = &title {
        promote_title(&mut blocks, t);
    }
    Ok(ParsedDocument {
        title,
        blocks,
        ocr_pages: ocr.pages,
        ..ParsedDocument::default()
    })
}

/// Loads the document, under `catch_unwind`; an encrypted one is refused.
fn load(bytes: &[u8]) -> Result<Document, ParseError> {
    let doc = match catch_unwind(AssertUnwindSafe(|| Document::load_mem(bytes))) {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => return Err(load_error(e)),
        Err(panic) => return Err(ParseError::Panicked(panic_message(&*panic))),
    };
    if doc.is_encrypted() {
        return Err(ParseError::Encrypted);
    }
    Ok(doc)
}

/// The text layer of every page that could be read, and what happened to the others.
struct TextLayer {
    /// Each read page's number and paragraphs, in page order.
    pages_paras: Vec<(u32, Vec<Para>)>,
    /// Pages that could not be read.
    failed: usize,
    /// Why the last of those could not (`panic: …` for a panic in pdf-extract).
    last_failure: String,
    /// Pages without a text layer that paint something: candidates for OCR.
    scanned: Vec<(u32, ObjectId)>,
}

/// Reads the text layer of each page in turn; a page that fails is counted and skipped.
fn read_pages(doc: &Document, pages: &std::collections::BTreeMap<u32, ObjectId>) -> TextLayer {
    let mut layer = TextLayer {
        pages_paras: Vec::new(),
        failed: 0,
        last_failure: String::new(),
        scanned: Vec::new(),
    };
    let mut guard = Guard::new(doc);
    for (&number, &page_id) in pages {
        let page_text = match page_text(doc, &mut guard, number, page_id) {
            Ok(s) => s,
            Err(why) => {
                layer.failed += 1;
                layer.last_failure = why;
                continue;
            }
        };
        let normalized = text::normalize_lines(&page_text);
        let chars = normalized.chars().filter(|c| c.is_alphanumeric()).count();
        if chars < MIN_TEXT_LAYER_CHARS && paints(doc, page_id) {
            layer.scanned.push((number, page_id));
        }
        layer
            .pages_paras
            .push((number, paras_from_lines(&normalized, Some(number))));
    }
    layer
}

/// The raw text of one page, or why it could not be had: the page has a shape that would
/// make pdf-extract recurse without end, no usable box, or pdf-extract failed or panicked.
fn page_text(
    doc: &Document,
    guard: &mut Guard<'_>,
    number: u32,
    page_id: ObjectId,
) -> Result<String, String> {
    let checked = catch_unwind(AssertUnwindSafe(|| guard.check_page(page_id)));
    if let Ok(Err(why)) | Err(why) = checked.map_err(|p| panic_message(&*p)) {
        return Err(format!("page {number}: {why}"));
    }
    // pdf-extract panics on a page without a usable MediaBox, or with a short ArtBox.
    if media_box(doc, page_id).is_none() || !art_box_ok(doc, page_id) {
        return Err(format!("page {number} has no usable MediaBox or ArtBox"));
    }
    let rendered = catch_unwind(AssertUnwindSafe(|| {
        let mut s = String::new();
        let result = pdf_extract::output_doc_page(doc, &mut PlainTextOutput::new(&mut s), number);
        result.map(|()| s)
    }));
    match rendered {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!("panic: {}", panic_message(&*panic))),
    }
}

/// Why a PDF gave no text at all: OCR unavailable, out of time or failing, every page
/// failing (the last failure says how), or no text in it.
fn no_text_error(ocr: OcrOutcome, failed: usize, pages: usize, last_failure: String) -> ParseError {
    if let Some(why) = ocr.unavailable {
        return ParseError::OcrUnavailable(why);
    }
    if ocr.timeouts > 0 {
        return ParseError::Timeout(format!(
            "OCR of {} scanned page(s): {}",
            ocr.timeouts, ocr.last_failure
        ));
    }
    if ocr.failures > 0 {
        return ParseError::Ocr(ocr.last_failure);
    }
    if failed > 0 && failed == pages {
        return if last_failure.starts_with("panic: ") {
            ParseError::Panicked(last_failure.trim_start_matches("panic: ").to_owned())
        } else {
            ParseError::Pdf(last_failure)
        };
    }
    ParseError::NoText
}

/// Logs the pages left out of a PDF that still gave text: unreadable, or scanned and not OCR'd.
fn warn_unread_pages(failed: usize, pages: usize, last_failure: &str, ocr: &OcrOutcome) {
    if failed > 0 {
        tracing::warn!(
            failed,
            pages,
            "some PDF pages could not be read: {last_failure}"
        );
    }
    if ocr.timeouts + ocr.failures + ocr.skipped > 0 || ocr.unavailable.is_some() {
        tracing::warn!(
            timeouts = ocr.timeouts,
            failures = ocr.failures,
            skipped = ocr.skipped,
            unavailable = ?ocr.unavailable,
            "some scanned PDF pages could not be OCR'd: {}",
            ocr.last_failure
        );
    }
}

/// The title shown as a heading on page 1 is the top of the outline.
fn promote_title(blocks: &mut [Block], title: &str) {
    if let Some(b) = blocks
        .iter_mut()
        .take(5)
        .find(|b| b.text == title && b.page == Some(1))
    {
        if b.heading_level().is_some() {
            *b = Block::heading(1, b.text.clone(), b.page);
        }
    }
}

/// What OCR made of the scanned pages.
#[derive(Debug, Default)]
struct OcrOutcome {
    /// Pages whose text came from OCR.
    pages: Vec<u32>,
    /// Why no page could be OCR'd, when a tool is missing.
    unavailable: Option<String>,
    timeouts: usize,
    failures: usize,
    /// Scanned pages past [`super::OcrOptions::max_pages`].
    skipped: usize,
    last_failure: String,
}

/// OCRs the scanned pages, replacing their (near-empty) paragraphs in `pages_paras`.
fn ocr_pages(
    bytes: &[u8],
    doc: &Document,
    scanned: &[(u32, ObjectId)],
    opts: &super::OcrOptions,
    pages_paras: &mut [(u32, Vec<Para>)],
) -> OcrOutcome {
    let mut outcome = OcrOutcome {
        skipped: scanned.len().saturating_sub(opts.max_pages),
        ..OcrOutcome::default()
    };
    let run = match OcrRun::new(bytes, opts) {
        Ok(run) => run,
        Err(e) => {
            outcome.failures += 1;
            outcome.last_failure = format!("{e:?}");
            return outcome;
        }
    };
    for &(number, page_id) in scanned.iter().take(opts.max_pages) {
        match run.page(number, media_box(doc, page_id)) {
            Ok(raw) => {
                let normalized = text::normalize_lines(&raw);
                let paras = paras_from_lines(&normalized, Some(number));
                if paras.is_empty() {
                    continue;
                }
                if let Some((_, slot)) = pages_paras.iter_mut().find(|(n, _)| *n == number) {
                    *slot = paras;
                    outcome.pages.push(number);
                }
            }
            Err(OcrFailure::Unavailable(why)) => {
                outcome.last_failure.clone_from(&why);
                outcome.unavailable = Some(why);
                break;
            }
            Err(OcrFailure::Timeout(why)) => {
                outcome.timeouts += 1;
                outcome.last_failure = format!("page {number}: {why}");
            }
            Err(OcrFailure::Failed(why)) => {
                outcome.failures += 1;
                outcome.last_failure = format!("page {number}: {why}");
            }
        }
    }
    outcome
}

/// Whether a page's content paints an XObject (`Do`: a scanned page is an image) or an
/// inline image (`BI`).
fn paints(doc: &Document, page_id: ObjectId) -> bool {
    let Ok(content) = catch_unwind(AssertUnwindSafe(|| doc.get_page_content(page_id))) else {
        return false;
    };
    let Ok(content) = content else {
        return false;
    };
    match catch_unwind(AssertUnwindSafe(|| {
        lopdf::content::Content::decode(&content)
    })) {
        Ok(Ok(ops)) => ops
            .operations
            .iter()
            .any(|op| matches!(op.operator.as_str(), "Do" | "BI" | "ID" | "EI")),
        // Undecodable content: look for the operators as words.
        _ => content
            .split(|b| b.is_ascii_whitespace())
            .any(|w| w == b"Do" || w == b"BI"),
    }
}

/// A page's size in points, from its (possibly inherited) `MediaBox` as pdf-extract looks it
/// up: the nearest one that is an array; `None` when that array does not start with four
/// numbers (pdf-extract would panic) or there is none.
fn media_box(doc: &Document, page_id: ObjectId) -> Option<(f64, f64)> {
    let mut dict = doc.get_dictionary(page_id).ok()?;
    for _ in 0..MAX_PARENT_CHAIN {
        if let Ok(obj) = dict.get(b"MediaBox") {
            if let Ok(arr) = deref_once(doc, obj)?.as_array() {
                let [x0, y0, x1, y1] = four_numbers(arr)?;
                return Some(((x1 - x0).abs(), (y1 - y0).abs()));
            }
        }
        let parent = dict.get(b"Parent").and_then(Object::as_reference).ok()?;
        dict = doc.get_dictionary(parent).ok()?;
    }
    None
}

/// Whether the page's own `ArtBox`, if it is an array, starts with four numbers (pdf-extract
/// indexes it blindly).
fn art_box_ok(doc: &Document, page_id: ObjectId) -> bool {
    let Ok(obj) = doc.get_dictionary(page_id).and_then(|d| d.get(b"ArtBox")) else {
        return true;
    };
    match deref_once(doc, obj).map(Object::as_array) {
        Some(Ok(arr)) => four_numbers(arr).is_some(),
        Some(Err(_)) => true,
        None => false,
    }
}

/// A reference resolved once, as pdf-extract does (which panics where this gives `None`).
fn deref_once<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Object> {
    match obj {
        Object::Reference(id) => doc.get_object(*id).ok(),
        other => Some(other),
    }
}

/// The first four of an array of direct numbers.
fn four_numbers(arr: &[Object]) -> Option<[f64; 4]> {
    let mut out = [0.0; 4];
    for (i, o) in arr.iter().enumerate() {
        let n = match o {
            Object::Integer(n) => *n as f64,
            Object::Real(r) => f64::from(*r),
            _ => return None,
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = n;
        }
    }
    (arr.len() >= 4).then_some(out)
}

/// Most nested XObject invocations on one page; pdf-extract recurses once per level.
const MAX_XOBJECT_DEPTH: usize = 32;
/// Most XObject invocations on one page, counting repeats (a fan-out "billion laughs").
const MAX_XOBJECT_CALLS: u64 = 10_000;
/// Most `Parent` links followed when looking up an inherited page attribute.
const MAX_PARENT_CHAIN: usize = 64;

/// Rejects, before pdf-extract sees them, the pages on which it would recurse without end
/// (a stack overflow aborts the process; `catch_unwind` cannot help): a cycle of form
/// XObjects, a chain of them deeper than [`MAX_XOBJECT_DEPTH`], a fan-out of more than
/// [`MAX_XOBJECT_CALLS`] invocations, or a cyclic `Parent` chain searched for an inherited
/// `Resources` or `MediaBox`. It follows `Do` exactly as pdf-extract does: the XObject's own
/// `Resources`, else the caller's.
struct Guard<'a> {
    doc: &'a Document,
    /// Invocations below an already explored (XObject, resources) state, keyed by address.
    explored: HashMap<(usize, usize), u64>,
}

impl<'a> Guard<'a> {
    fn new(doc: &'a Document) -> Self {
        Guard {
            doc,
            explored: HashMap::new(),
        }
    }

    fn check_page(&mut self, page_id: ObjectId) -> Result<(), String> {
        let Ok(page) = self.doc.get_dictionary(page_id) else {
            return Ok(()); // pdf-extract reports this itself
        };
        for key in [&b"Resources"[..], b"MediaBox"] {
            if !self.inherited_lookup_ends(page, key) {
                return Err("the page tree loops (cyclic Parent)".into());
            }
        }
        let resources = self.inherited_dict(page, b"Resources");
        let Ok(content) = self.doc.get_page_content(page_id) else {
            return Ok(());
        };
        self.expand(&content, resources, &mut Vec::new())
            .map(|_| ())
    }

    /// Whether looking `key` up through the `Parent` chain terminates.
    fn inherited_lookup_ends(&self, mut dict: &'a Dictionary, key: &[u8]) -> bool {
        let mut seen = Vec::new();
        loop {
            if dict.has(key) {
                return true;
            }
            let Ok(parent) = dict.get(b"Parent").and_then(Object::as_reference) else {
                return true;
            };
            if seen.contains(&parent) || seen.len() >= MAX_PARENT_CHAIN {
                return false;
            }
            seen.push(parent);
            match self.doc.get_dictionary(parent) {
                Ok(d) => dict = d,
                Err(_) => return true,
            }
        }
    }

    fn inherited_dict(&self, mut dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
        for _ in 0..MAX_PARENT_CHAIN {
            if let Some(found) = self.dict_at(dict, key) {
                return Some(found);
            }
            let parent = dict.get(b"Parent").and_then(Object::as_reference).ok()?;
            dict = self.doc.get_dictionary(parent).ok()?;
        }
        None
    }

    fn dict_at(&self, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
        let obj = dict.get(key).ok()?;
        self.doc.dereference(obj).ok()?.1.as_dict().ok()
    }

    /// Counts the XObject invocations below `content`; `Err` when unbounded or too many.
    fn expand(
        &mut self,
        content: &[u8],
        resources: Option<&'a Dictionary>,
        stack: &mut Vec<(usize, usize)>,
    ) -> Result<u64, String> {
        if stack.len() > MAX_XOBJECT_DEPTH {
            return Err(format!(
                "XObjects nested more than {MAX_XOBJECT_DEPTH} deep"
            ));
        }
        let Ok(ops) = lopdf::content::Content::decode(content) else {
            return Ok(0);
        };
        let mut total = 0u64;
        for op in ops.operations.iter().filter(|op| op.operator == "Do") {
            let Some(name) = op.operands.first().and_then(|o| o.as_name().ok()) else {
                continue;
            };
            let Some(xobjects) = resources.and_then(|r| self.dict_at(r, b"XObject")) else {
                continue;
            };
            let Ok(entry) = xobjects.get(name) else {
                continue;
            };
            let Ok((_, Object::Stream(stream))) = self.doc.dereference(entry) else {
                continue;
            };
            let own = self.dict_at(&stream.dict, b"Resources").or(resources);
            // Objects live in the document for the whole check: addresses identify them.
            let key = (
                std::ptr::from_ref(stream) as usize,
                own.map_or(0, |r| std::ptr::from_ref(r) as usize),
            );
            if stack.contains(&key) {
                return Err("XObjects invoke themselves in a cycle".into());
            }
            let below = match self.explored.get(&key) {
                Some(&n) => n,
                None => {
                    let inner = if stream.filters().is_ok() {
                        stream
                            .decompressed_content()
                            .unwrap_or_else(|_| stream.content.clone())
                    } else {
                        stream.content.clone()
                    };
                    stack.push(key);
                    let n = self.expand(&inner, own, stack)?;
                    stack.pop();
                    self.explored.insert(key, n);
                    n
                }
            };
            total = total.saturating_add(1 + below);
            if total > MAX_XOBJECT_CALLS {
                return Err(format!("more than {MAX_XOBJECT_CALLS} XObject invocations"));
            }
        }
        Ok(total)
    }
}

fn load_error(e: lopdf::Error) -> ParseError {
    match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => ParseError::Encrypted,
        e => {
            let msg = e.to_string();
            if msg.to_ascii_lowercase().contains("encrypt") {
                ParseError::Encrypted
            } else {
                ParseError::Pdf(msg)
            }
        }
    }
}

/// Drops running headers and footers: a first (or last) paragraph of one or two lines that is
/// the same on at least three pages and on at least half of the pages with text, comparing
/// with the page's own number masked (so `Halaman 3 daripada 7` matches on every page). A
/// page's only paragraph is kept.
fn drop_running_lines(pages: &mut [(u32, Vec<Para>)]) {
    let with_text = pages.iter().filter(|(_, p)| !p.is_empty()).count();
    if with_text < 3 {
        return;
    }
    let key = |number: u32, p: &Para| -> Option<String> {
        if p.lines.len() > 2 {
            return None;
        }
        let n = number.to_string();
        let mut masked_once = false;
        let masked: Vec<String> = p
            .lines
            .join(" ")
            .split_whitespace()
            .map(|w| {
                let core = w.trim_matches(|c: char| !c.is_alphanumeric());
                if core == n && !masked_once {
                    masked_once = true;
                    w.replace(&n, "#")
                } else {
                    w.to_lowercase()
                }
            })
            .collect();
        Some(masked.join(" "))
    };
    let threshold = 3.max(with_text.div_ceil(2));
    for from_end in [false, true] {
        let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (number, paras) in pages.iter() {
            let edge = if from_end {
                paras.last()
            } else {
                paras.first()
            };
            if let Some(k) = edge.and_then(|p| key(*number, p)) {
                *counts.entry(k).or_default() += 1;
            }
        }
        for (number, paras) in pages.iter_mut() {
            let edge = if from_end {
                paras.last()
            } else {
                paras.first()
            };
            let repeated = edge
                .and_then(|p| key(*number, p))
                .is_some_and(|k| counts.get(&k).is_some_and(|&c| c >= threshold));
            // A page that is nothing but the repeated line keeps it.
            if repeated && paras.len() > 1 {
                if from_end {
                    paras.pop();
                } else {
                    paras.remove(0);
                }
            }
        }
    }
}

/// Drops running headers and footers that carry a printed page number differing from the PDF
/// page index (`Chapter 2: Handling 3` on PDF page 6): a first (or last) paragraph of one or
/// two lines starting or ending with a number whose offset from the page index is the same on
/// at least three pages and a third of the pages with text.
fn drop_numbered_running_lines(pages: &mut [(u32, Vec<Para>)]) {
    let with_text = pages.iter().filter(|(_, p)| !p.is_empty()).count();
    if with_text < 3 {
        return;
    }
    let offset = |number: u32, p: &Para| -> Option<i64> {
        if p.lines.len() > 2 {
            return None;
        }
        let joined = p.lines.join(" ");
        let mut tokens = joined.split_whitespace();
        let (first, last) = (tokens.next()?, tokens.next_back()?);
        if joined.split_whitespace().count() > 12 {
            return None;
        }
        // A bare number, perhaps in dashes or brackets; "3." ends a sentence instead.
        let printed = |t: &str| {
            let t = t.trim_matches(|c: char| matches!(c, '-' | '–' | '(' | ')' | '[' | ']' | '|'));
            let digits = !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| t.parse::<i64>().ok()).flatten()
        };
        printed(last)
            .or_else(|| printed(first))
            .map(|n| i64::from(number) - n)
    };
    let threshold = 3.max(with_text.div_ceil(3));
    for from_end in [false, true] {
        let mut counts: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        for (number, paras) in pages.iter() {
            let edge = if from_end {
                paras.last()
            } else {
                paras.first()
            };
            if let Some(o) = edge.and_then(|p| offset(*number, p)) {
                *counts.entry(o).or_default() += 1;
            }
        }
        for (number, paras) in pages.iter_mut() {
            let edge = if from_end {
                paras.last()
            } else {
                paras.first()
            };
            let repeated = edge
                .and_then(|p| offset(*number, p))
                .is_some_and(|o| counts.get(&o).is_some_and(|&c| c >= threshold));
            if repeated && paras.len() > 1 {
                if from_end {
                    paras.pop();
                } else {
                    paras.remove(0);
                }
            }
        }
    }
}

/// Drops a lone page number (`12`, `- 12 -`, `Page 3 of 10`, `Muka surat 3`) at the top or
/// bottom of a page.
fn drop_page_numbers(paras: &mut Vec<Para>) {
    let is_page_number = |p: &Para| {
        let [line] = p.lines.as_slice() else {
            return false;
        };
        let lower = line.to_lowercase();
        let core = lower
            .trim_start_matches("page")
            .trim_start_matches("halaman")
            .trim_start_matches("muka surat")
            .trim_matches(|c: char| c == '-' || c == '–' || c.is_whitespace());
        let (first, total) = [" of ", " daripada ", " dari ", "/"]
            .iter()
            .find_map(|sep| core.split_once(sep))
            .unwrap_or((core, "0"));
        let numeric =
            |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
        numeric(first.trim()) && numeric(total.trim())
    };
    if paras.len() > 1 && paras.last().is_some_and(is_page_number) {
        paras.pop();
    }
    if paras.len() > 1 && paras.first().is_some_and(is_page_number) {
        paras.remove(0);
    }
}

/// The document information `Title`, unless it is a generator's placeholder.
fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let dict = match info {
        Object::Reference(id) => doc.get_dictionary(*id).ok()?,
        Object::Dictionary(d) => d,
        _ => return None,
    };
    let raw = lopdf::decode_text_string(dict.get(b"Title").ok()?).ok()?;
    let title = text::normalize(&raw);
    let lower = title.to_lowercase();
    let junk = title.chars().count() < 3
        || lower.starts_with("microsoft word")
        || lower.starts_with("untitled")
        || [".doc", ".docx", ".pdf", ".rtf", ".odt", ".indd", ".tmp"]
            .iter()
            .any(|ext| lower.ends_with(ext));
    (!junk).then_some(title)
}

/// The first block, when it is a heading on page 1.
fn first_heading(blocks: &[Block]) -> Option<String> {
    let first = blocks.first()?;
    (first.heading_level().is_some() && first.page == Some(1)).then(|| first.text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(line: &str) -> Para {
        Para {
            page: Some(1),
            lines: vec![line.to_owned()],
        }
    }

    #[test]
    fn running_headers_and_footers_are_dropped() {
        let mut pages: Vec<(u32, Vec<Para>)> = (1..=4)
            .map(|n| {
                (
                    n,
                    vec![
                        para("Syarikat ABC | Polisi Cuti"),
                        para(&format!("Teks halaman {n}.")),
                        para(&format!("Halaman {n} daripada 4")),
                    ],
                )
            })
            .collect();
        pages[2].1.insert(0, para("Bahagian 3"));
        drop_running_lines(&mut pages);
        drop_numbered_running_lines(&mut pages);
        let texts: Vec<Vec<&str>> = pages
            .iter()
            .map(|(_, p)| p.iter().map(|p| p.lines[0].as_str()).collect())
            .collect();
        assert_eq!(
            texts,
            [
                vec!["Teks halaman 1."],
                vec!["Teks halaman 2."],
                vec![
                    "Bahagian 3",
                    "Syarikat ABC | Polisi Cuti",
                    "Teks halaman 3."
                ],
                vec!["Teks halaman 4."],
            ]
        );
    }

    #[test]
    fn a_page_of_only_the_repeated_line_keeps_it() {
        let mut pages: Vec<(u32, Vec<Para>)> = (1..=4).map(|n| (n, vec![para("Potato")])).collect();
        drop_running_lines(&mut pages);
        assert!(pages.iter().all(|(_, p)| p.len() == 1));
    }

    #[test]
    fn headers_with_printed_page_numbers_are_dropped() {
        let mut pages: Vec<(u32, Vec<Para>)> = (5..=9)
            .map(|n| {
                let chapter = if n < 7 {
                    "Chapter 1: Intro"
                } else {
                    "Chapter 2: Usage"
                };
                let header = format!("{chapter} {}", n - 3);
                (n, vec![para(&header), para("Body text here.")])
            })
            .collect();
        pages[0].1.insert(0, para("1 Introduction"));
        drop_numbered_running_lines(&mut pages);
        let firsts: Vec<&str> = pages.iter().map(|(_, p)| p[0].lines[0].as_str()).collect();
        assert_eq!(
            firsts,
            [
                "1 Introduction",
                "Body text here.",
                "Body text here.",
                "Body text here.",
                "Body text here."
            ]
        );
    }

    #[test]
    fn page_numbers_at_page_edges_are_dropped() {
        for number in [
            "12",
            "- 12 -",
            "Page 3 of 10",
            "Muka surat 3",
            "Halaman 4 dari 9",
            "Halaman 4 daripada 9",
            "3/10",
        ] {
            let mut paras = vec![para("Teks utama."), para(number)];
            drop_page_numbers(&mut paras);
            assert_eq!(paras.len(), 1, "{number}");
        }
        let mut paras = vec![para("Teks utama."), para("2020 Tahun")];
        drop_page_numbers(&mut paras);
        assert_eq!(paras.len(), 2);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(parse(b"%PDF-1.4\nnot really", &ParseLimits::default()).is_err());
    }
}
