//! Answers with citations, in two modes behind one interface ([`crate::Engine::ask`]):
//!
//! - **extractive** (default, no language model): the sentences of the top passages that
//!   best answer the question, chosen with the same multilingual embedder (so a Malay
//!   question finds an English sentence), quoted with their document and page;
//! - **generative**: a local GGUF model writes the answer from a small numbered prompt,
//!   streaming; its `[n]` citations are mapped back to passages and checked.
//!
//! Both abstain, in the language of the question, when the best passage is not relevant
//! enough (`answer.min_relevance`, calibrated on data: docs/quality.md).

use std::collections::HashMap;

use serde::Serialize;
use tanya_ingest::Lang;

use crate::bm25::{analyze, Analyzer};
use crate::config::AnswerMode;
use crate::retrieve::SearchHit;

/// A source an answer relies on (also the API's citation shape).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Citation {
    /// The number used in the answer text: `[n]`.
    pub n: usize,
    pub doc_id: String,
    pub rel_path: String,
    pub title: String,
    pub page: Option<u32>,
    pub heading: Option<String>,
    /// The cited words, exactly as they appear in the document.
    pub quote: String,
    /// Character offsets of the passage in the document's text.
    pub char_start: usize,
    pub char_end: usize,
}

/// A finished answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub text: String,
    pub citations: Vec<Citation>,
    /// True when the documents do not contain the answer (as far as Tanya can tell).
    pub abstained: bool,
    pub mode: AnswerMode,
    pub lang: Lang,
    /// What retrieval found, best first.
    pub passages: Vec<SearchHit>,
    /// Best cosine similarity between the question and a retrieved passage (the input
    /// of the abstention gate).
    pub relevance: f32,
    /// Milliseconds spent retrieving, and answering after retrieval.
    pub retrieval_ms: f64,
    pub answer_ms: f64,
    /// Generative mode only: time to first token and decode speed.
    pub time_to_first_token_ms: Option<f64>,
    pub tokens_per_second: Option<f64>,
}

/// Streamed while answering.
#[derive(Debug, Clone)]
pub enum AnswerEvent {
    /// Retrieval is done: what the answer will be based on (shown at once).
    Passages(Vec<SearchHit>),
    /// A piece of generated text.
    Token(String),
}

/// Words that mark a question as Malay (question words and common function words).
const MALAY_CUES: &[&str] = &[
    "apa",
    "apakah",
    "berapa",
    "berapakah",
    "bagaimana",
    "bagaimanakah",
    "siapa",
    "siapakah",
    "bila",
    "bilakah",
    "mengapa",
    "kenapa",
    "adakah",
    "di",
    "mana",
    "manakah",
    "yang",
    "untuk",
    "dan",
    "ke",
    "saya",
    "kita",
    "boleh",
    "perlu",
    "selepas",
    "sebelum",
    "dalam",
    "dengan",
    "tahun",
    "hari",
    "bulan",
    "cuti",
    "pekerja",
    "tuntutan",
    "ialah",
    "adalah",
    "berapakah",
    "jika",
    "kalau",
    "tidak",
    "bagi",
    "oleh",
    "pada",
    "daripada",
    "syarikat",
    "harus",
];
const ENGLISH_CUES: &[&str] = &[
    "what",
    "how",
    "many",
    "much",
    "who",
    "when",
    "where",
    "why",
    "which",
    "is",
    "are",
    "do",
    "does",
    "can",
    "the",
    "a",
    "an",
    "of",
    "for",
    "to",
    "in",
    "i",
    "my",
    "after",
    "before",
    "with",
    "must",
    "should",
    "days",
    "years",
    "leave",
    "employee",
    "employees",
    "claim",
];

/// The language a question is written in.
pub fn question_lang(question: &str) -> Lang {
    let words: Vec<String> = crate::bm25::tokenize(question);
    let ms = words
        .iter()
        .filter(|w| MALAY_CUES.contains(&w.as_str()))
        .count();
    let en = words
        .iter()
        .filter(|w| ENGLISH_CUES.contains(&w.as_str()))
        .count();
    match ms.cmp(&en) {
        std::cmp::Ordering::Greater => Lang::Ms,
        std::cmp::Ordering::Less => Lang::En,
        // No question word tells: a title or a few keywords ("Rang Undang-Undang
        // Perbekalan 2000"), which have no stopwords either. Character n-gram models
        // tell Malay from English on a few words (docs/quality.md §9).
        std::cmp::Ordering::Equal => match LANGUAGE_DETECTOR.detect_language_of(question) {
            Some(lingua::Language::Malay) => Lang::Ms,
            Some(_) => Lang::En,
            None => tanya_ingest::text::detect_lang(question),
        },
    }
}

/// English and Malay n-gram models (lingua), loaded on the first question that needs them.
static LANGUAGE_DETECTOR: std::sync::LazyLock<lingua::LanguageDetector> =
    std::sync::LazyLock::new(|| {
        lingua::LanguageDetectorBuilder::from_languages(&[
            lingua::Language::English,
            lingua::Language::Malay,
        ])
        .with_preloaded_language_models()
        .build()
    });

/// "The documents do not say", in the question's language.
pub fn abstain_text(lang: Lang) -> &'static str {
    match lang {
        Lang::Ms => "Dokumen yang ada tidak menyatakan perkara ini.",
        Lang::En => "The documents do not say.",
    }
}

fn according_to(lang: Lang) -> &'static str {
    match lang {
        Lang::Ms => "Menurut dokumen:",
        Lang::En => "According to the documents:",
    }
}

/// The highest dense similarity among the hits (the relevance gate's input).
pub fn best_relevance(hits: &[SearchHit]) -> f32 {
    hits.iter()
        .filter_map(|h| h.dense.map(|d| d.1))
        .fold(f32::MIN, f32::max)
}

/// A sentence of a passage, with its char offsets inside the passage text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Splits passage text into sentences: at `.`, `?`, `!` or `;` followed by whitespace and
/// an uppercase letter, digit or opening mark, and at line breaks. Abbreviations common
/// in Malaysian documents ("Sdn. Bhd.", "No.", "e.g.") do not end sentences.
pub fn split_sentences(text: &str) -> Vec<Sentence> {
    const ABBREV: &[&str] = &[
        "sdn", "bhd", "no", "e.g", "i.e", "dr", "mr", "mrs", "ms", "encik", "pn", "tn", "hj",
        "prof", "etc", "dll", "dsb", "vs", "para", "sek", "ms", "cf", "art",
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0usize;
    let push = |out: &mut Vec<Sentence>, s: usize, e: usize| {
        let piece: String = chars[s..e].iter().collect();
        let lead = piece.len() - piece.trim_start().len();
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            let s2 = s + piece[..lead].chars().count();
            out.push(Sentence {
                text: trimmed.to_string(),
                start: s2,
                end: s2 + trimmed.chars().count(),
            });
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            push(&mut out, start, i);
            start = i + 1;
        } else if matches!(c, '.' | '?' | '!' | ';')
            && chars.get(i + 1).is_some_and(|n| n.is_whitespace())
        {
            let next = chars[i + 1..].iter().find(|n| !n.is_whitespace());
            let starts_new = next.is_some_and(|n| {
                n.is_uppercase() || n.is_ascii_digit() || matches!(n, '"' | '“' | '(' | '•' | '-')
            });
            let word: String = chars[start..i]
                .iter()
                .rev()
                .take_while(|c| !c.is_whitespace())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
                .to_lowercase();
            let abbreviation = c == '.' && ABBREV.contains(&word.trim_matches(|c| c == '('));
            if starts_new && !abbreviation {
                push(&mut out, start, i + 1);
                start = i + 1;
            }
        }
        i += 1;
    }
    push(&mut out, start, chars.len());
    out
}

/// Share of the question's content words (stemmed; a number with its unit is one
/// word) that also occur in `text`.
pub fn lexical_overlap(question: &str, text: &str) -> f32 {
    QuestionTerms::words_only(question).coverage(text)
}

/// Units that make a number a quantity, as the analysers leave them (stemmed).
const UNITS: &[&str] = &[
    "hari", "minggu", "bulan", "tahun", "jam", "minit", "peratus", "kali", "day", "week", "month",
    "year", "hour", "minut", "percent", "time",
];

fn is_number(term: &str) -> bool {
    !term.is_empty() && term.chars().all(|c| c.is_ascii_digit())
}

/// Whether `a b` is a quantity: a number and the unit after it ("3 tahun").
fn is_quantity(a: &str, b: &str) -> bool {
    is_number(a) && UNITS.contains(&b)
}

/// The terms of one analysed question, each with an index so that a passage counts it
/// once: single words, and two-word terms (quantities, and with `with_pairs` adjacent
/// word pairs) keyed by their first word.
#[derive(Debug, Clone, Default)]
struct Terms {
    words: HashMap<String, usize>,
    twos: HashMap<String, Vec<(String, usize)>>,
    len: usize,
}

impl Terms {
    /// A quantity is matched whole and its words are not terms of their own: "3 years
    /// of service" is not about a passage's "3 months" or its section "3.1" (whether
    /// the passage's own numbers fit is [`numeric_fit`]'s job). A pair is the
    /// question's phrase: "cuti tahunan" (annual leave) and a passage with "cuti sakit"
    /// and "3 tahun" (sick leave, years) share every stemmed word but not the phrase.
    fn new(analysed: &[String], with_pairs: bool) -> Self {
        let mut t = Terms::default();
        let mut previous: Option<&str> = None;
        let mut i = 0;
        while i < analysed.len() {
            let word = analysed[i].as_str();
            match analysed.get(i + 1) {
                Some(unit) if is_quantity(word, unit) => {
                    t.add_two(word, unit);
                    previous = None;
                    i += 2;
                }
                _ => {
                    if !t.words.contains_key(word) {
                        t.words.insert(word.to_string(), t.len);
                        t.len += 1;
                    }
                    match previous {
                        Some(p) if with_pairs && p != word && !is_number(word) => {
                            t.add_two(p, word)
                        }
                        _ => {}
                    }
                    previous = (!is_number(word)).then_some(word);
                    i += 1;
                }
            }
        }
        t
    }

    fn add_two(&mut self, first: &str, second: &str) {
        let seconds = self.twos.entry(first.to_string()).or_default();
        if !seconds.iter().any(|(s, _)| s == second) {
            seconds.push((second.to_string(), self.len));
            self.len += 1;
        }
    }

    /// Share of the terms in an analysed passage: its words, and each adjacent pair of
    /// its words ("16 hari cuti" has the quantity "16 hari" and the pair "hari cuti").
    fn share_in(&self, analysed: &[String]) -> f32 {
        let mut found = vec![false; self.len];
        for (i, w) in analysed.iter().enumerate() {
            if let Some(&k) = self.words.get(w) {
                found[k] = true;
            }
            if let (Some(seconds), Some(next)) = (self.twos.get(w), analysed.get(i + 1)) {
                for (second, k) in seconds {
                    if second == next {
                        found[*k] = true;
                    }
                }
            }
        }
        found.iter().filter(|f| **f).count() as f32 / self.len as f32
    }
}

/// A question's terms under both analysers (see [`Terms`]), computed once so that
/// scoring many passages against one question does not re-analyse it each time.
#[derive(Debug, Clone)]
pub struct QuestionTerms {
    by_analyzer: [(Analyzer, Terms); 2],
}

impl QuestionTerms {
    /// Words, quantities and word pairs (what a BM25 hit's coverage vote counts).
    pub fn new(question: &str) -> Self {
        Self::build(question, true)
    }

    /// Words and quantities only (whether a passage supports a generated claim: a
    /// paraphrase keeps the words, not their order).
    pub fn words_only(question: &str) -> Self {
        Self::build(question, false)
    }

    fn build(question: &str, with_pairs: bool) -> Self {
        let terms = |a| Terms::new(&analyze(question, a), with_pairs);
        QuestionTerms {
            by_analyzer: [
                (Analyzer::Malay, terms(Analyzer::Malay)),
                (Analyzer::English, terms(Analyzer::English)),
            ],
        }
    }

    /// Share of the question's terms that occur in `text` (the better of the two
    /// analysers).
    pub fn coverage(&self, text: &str) -> f32 {
        let mut best: f32 = 0.0;
        for (analyzer, q) in &self.by_analyzer {
            if q.len == 0 {
                continue;
            }
            best = best.max(q.share_in(&analyze(text, *analyzer)));
        }
        best
    }
}

/// A candidate sentence for an extractive answer.
#[derive(Debug, Clone)]
pub struct Scored {
    pub hit: usize,
    pub sentence: Sentence,
    pub score: f32,
}

/// Weight of the chunk's own similarity in a sentence's score: a sentence must answer
/// *and* sit in a passage about the question ("3 times the hourly rate" is close to
/// "3 years" but sits in the overtime section). Measured: docs/quality.md.
pub const CHUNK_WEIGHT: f32 = 0.5;
/// Bonus for a sentence whose numeric condition fits the question's number.
pub const NUMERIC_WEIGHT: f32 = 0.03;

/// Scores a sentence: similarity to the question (a mix of the sentence's and its
/// chunk's, both cross-language), a small prior for the passage's rank, and the numeric
/// fit (see [`numeric_fit`]). Word-overlap bonuses were measured and left out: they
/// favour sentences in the question's language when the answer is in the other one.
pub fn score_sentence(sentence_cos: f32, chunk_cos: f32, passage_rank: usize, numeric: f32) -> f32 {
    (1.0 - CHUNK_WEIGHT) * sentence_cos
        + CHUNK_WEIGHT * chunk_cos
        + 0.02 / (passage_rank as f32 + 1.0)
        + NUMERIC_WEIGHT * numeric
}

/// A numeric condition a sentence states, e.g. "2 hingga 5 tahun" or "more than 10".
#[derive(Debug, Clone, Copy, PartialEq)]
enum Condition {
    Between(f64, f64),
    Below(f64),
    Above(f64),
    AtLeast(f64),
    AtMost(f64),
}

impl Condition {
    fn holds(self, n: f64) -> bool {
        match self {
            Condition::Between(a, b) => a <= n && n <= b,
            Condition::Below(x) => n < x,
            Condition::Above(x) => n > x,
            Condition::AtLeast(x) => n >= x,
            Condition::AtMost(x) => n <= x,
        }
    }
}

fn parse_number(w: &str) -> Option<f64> {
    let t = w.trim_start_matches("rm").replace(',', "");
    if t.is_empty() || !t.chars().next()?.is_ascii_digit() {
        return None;
    }
    t.parse().ok()
}

/// Numbers in `text` (plain and "RM5,000" style).
fn numbers(text: &str) -> Vec<f64> {
    crate::bm25::tokenize(text)
        .iter()
        .filter_map(|w| parse_number(w))
        .collect()
}

/// Numeric conditions stated in a sentence, in Malay or English.
fn conditions(text: &str) -> Vec<Condition> {
    let words = crate::bm25::tokenize(text);
    let num = |i: usize| words.get(i).and_then(|w| parse_number(w));
    let mut out = Vec::new();
    for i in 0..words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        // "X hingga/to/- Y" with an optional unit between: "2 tahun hingga 5 tahun".
        if let Some(a) = num(i) {
            for gap in [1usize, 2] {
                let link = words.get(i + gap).map(String::as_str).unwrap_or("");
                if matches!(link, "hingga" | "to" | "sehingga" | "and" | "dan") {
                    if let Some(b) = num(i + gap + 1) {
                        if a < b {
                            out.push(Condition::Between(a, b));
                        }
                    }
                }
            }
        }
        let after = |skip: usize| num(i + skip);
        match (w, next) {
            ("kurang", "daripada") | ("less", "than") | ("fewer", "than") => {
                if let Some(x) = after(2) {
                    out.push(Condition::Below(x));
                }
            }
            ("lebih", "daripada") | ("more", "than") => {
                if let Some(x) = after(2) {
                    out.push(Condition::Above(x));
                }
            }
            ("at", "least") | ("sekurang", "kurangnya") => {
                if let Some(x) = after(2) {
                    out.push(Condition::AtLeast(x));
                }
            }
            ("not", "exceeding") | ("tidak", "melebihi") | ("up", "to") => {
                if let Some(x) = after(2) {
                    out.push(Condition::AtMost(x));
                }
            }
            ("melebihi" | "exceeding" | "above" | "over", _)
                if !matches!(
                    words.get(i.wrapping_sub(1)).map(String::as_str),
                    Some("tidak" | "not")
                ) =>
            {
                if let Some(x) = after(1) {
                    out.push(Condition::Above(x));
                }
            }
            ("below" | "under", _) => {
                if let Some(x) = after(1) {
                    out.push(Condition::Below(x));
                }
            }
            _ => {}
        }
    }
    out
}

/// How well a sentence's numbers fit the question's: +1 when the conditions the sentence
/// states all hold for a number in the question ("3 years" vs "2 to 5 years"), -1 when the
/// sentence states conditions and none holds, 0 when either side has no numbers.
/// Policies are full of thresholds; embeddings cannot compare numbers.
pub fn numeric_fit(question: &str, sentence: &str) -> f32 {
    NumericQuestion::new(question).fit(sentence)
}

/// The numbers of a question, extracted once for scoring many sentences.
#[derive(Debug, Clone)]
pub struct NumericQuestion {
    numbers: Vec<f64>,
}

impl NumericQuestion {
    pub fn new(question: &str) -> Self {
        NumericQuestion {
            numbers: numbers(question),
        }
    }

    /// See [`numeric_fit`].
    pub fn fit(&self, sentence: &str) -> f32 {
        if self.numbers.is_empty() {
            return 0.0;
        }
        let conds = conditions(sentence);
        if conds.is_empty() {
            return 0.0;
        }
        // Conditions in one sentence are read together: "more than 5 but not exceeding 10".
        if self
            .numbers
            .iter()
            .any(|&n| conds.iter().all(|c| c.holds(n)))
        {
            1.0
        } else {
            -1.0
        }
    }
}

/// Whether a sentence is worth its own vector: fragments under 4 words answer nothing,
/// and over 120 words it is a list or table that the chunk vector covers already.
pub fn answerable_length(sentence: &str) -> bool {
    (4..=120).contains(&sentence.split_whitespace().count())
}

/// Builds the extractive answer from the chosen sentences (best first).
pub fn extractive_answer(
    lang: Lang,
    hits: &[SearchHit],
    chosen: &[Scored],
) -> (String, Vec<Citation>) {
    let mut citations: Vec<Citation> = Vec::new();
    let mut parts = Vec::new();
    for c in chosen {
        let p = &hits[c.hit].passage;
        let n = match citations
            .iter()
            .position(|x| x.doc_id == p.doc_id && x.page == p.page && x.char_start == p.char_start)
        {
            Some(i) => citations[i].n,
            None => {
                let n = citations.len() + 1;
                citations.push(citation(n, c.hit, hits, &c.sentence.text));
                n
            }
        };
        parts.push(format!("“{}” [{n}]", c.sentence.text));
    }
    let text = format!("{} {}", according_to(lang), parts.join(" "));
    (text, citations)
}

fn citation(n: usize, hit: usize, hits: &[SearchHit], quote: &str) -> Citation {
    let p = &hits[hit].passage;
    Citation {
        n,
        doc_id: p.doc_id.clone(),
        rel_path: p.rel_path.clone(),
        title: p.title.clone(),
        page: p.page,
        heading: p.heading_path.last().cloned(),
        quote: quote.to_string(),
        char_start: p.char_start,
        char_end: p.char_end,
    }
}

/// Checks the `[n]` citations of generated text against the passages it was given:
/// a number outside 1..=given, or one whose sentence shares too little with passage n,
/// is dropped (and its marker removed from the text). Returns the cleaned text and the
/// citations that stand.
pub fn check_citations(text: &str, hits: &[SearchHit]) -> (String, Vec<Citation>) {
    let mut kept: Vec<Citation> = Vec::new();
    let mut cleaned = String::new();
    for sentence in split_sentences_keep_markers(text) {
        let plain = strip_markers(&sentence);
        let mut s = sentence.clone();
        for n in markers(&sentence) {
            let ok = n >= 1 && n <= hits.len() && supports(&hits[n - 1].passage.text, &plain);
            if ok {
                if !kept.iter().any(|c| c.n == n) {
                    kept.push(citation(n, n - 1, hits, plain.trim()));
                }
            } else {
                s = s.replace(&format!("[{n}]"), "");
            }
        }
        if !cleaned.is_empty() {
            cleaned.push(' ');
        }
        cleaned.push_str(s.trim());
    }
    kept.sort_by_key(|c| c.n);
    (cleaned, kept)
}

/// Whether a passage supports a claim: at least 30 % of the claim's content words
/// (stemmed, either language) appear in the passage, or the claim has no content words
/// of its own (e.g. "See [1].").
pub fn supports(passage: &str, claim: &str) -> bool {
    let words = analyze(claim, Analyzer::English);
    if words.len() < 2 {
        return true;
    }
    lexical_overlap(claim, passage) >= 0.3
}

fn markers(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b']' && j - i <= 4 {
                if let Ok(n) = s[i + 1..j].parse() {
                    out.push(n);
                }
                i = j;
            }
        }
        i += 1;
    }
    out
}

fn strip_markers(s: &str) -> String {
    let mut out = s.to_string();
    for n in markers(s) {
        out = out.replace(&format!("[{n}]"), "");
    }
    out
}

fn split_sentences_keep_markers(text: &str) -> Vec<String> {
    // Split after sentence punctuation (optionally followed by citation markers).
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        cur.push(chars[i]);
        if matches!(chars[i], '.' | '?' | '!' | '\n') {
            // absorb following markers like " [1][2]"
            let mut j = i + 1;
            loop {
                let mut k = j;
                while k < chars.len() && chars[k] == ' ' {
                    k += 1;
                }
                if k < chars.len() && chars[k] == '[' {
                    let mut m = k + 1;
                    while m < chars.len() && chars[m].is_ascii_digit() {
                        m += 1;
                    }
                    if m < chars.len() && chars[m] == ']' && m > k + 1 {
                        cur.extend(&chars[j..=m]);
                        j = m + 1;
                        continue;
                    }
                }
                break;
            }
            i = j;
            if !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.clear();
            }
            continue;
        }
        i += 1;
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract_tests::passage;

    fn hit(text: &str) -> SearchHit {
        let mut p = passage("d", "v", 0, &["public"]);
        p.text = text.into();
        SearchHit {
            passage: p,
            score: 1.0,
            dense: Some((1, 0.9)),
            bm25: None,
            rerank: None,
        }
    }

    #[test]
    fn quantities_are_matched_whole() {
        // Stemmed units stay units in both analysers.
        for (w, a) in [
            ("3 hari", Analyzer::Malay),
            ("3 tahun", Analyzer::Malay),
            ("3 bulan", Analyzer::Malay),
            ("3 days", Analyzer::English),
            ("3 years", Analyzer::English),
            ("3 months", Analyzer::English),
        ] {
            let t = analyze(w, a);
            assert!(UNITS.contains(&t[1].as_str()), "{w}: {t:?}");
        }
        let q = QuestionTerms::new("Berapa hari cuti tahunan selepas 3 tahun berkhidmat?");
        // The question's "3 tahun" is not in a passage's "3 bulan" or its section "3.1".
        let months = "Pekerja boleh memohon 8 hari cuti tahunan selepas 3 bulan perkhidmatan.";
        let section = "3.1 Kelayakan\nPekerja yang berkhidmat 2 tahun layak 18 hari cuti sakit.";
        let annual = "Pekerja yang berkhidmat 2 hingga 5 tahun layak 16 hari cuti tahunan.";
        let exact = "Selepas 3 tahun berkhidmat, pekerja layak 16 hari cuti tahunan.";
        let sick = "Pekerja yang berkhidmat 2 hingga 5 tahun layak 18 hari cuti sakit setahun.";
        assert_eq!(q.coverage(months), q.coverage(annual));
        assert!(q.coverage(section) < q.coverage(annual));
        assert!(q.coverage(sick) < q.coverage(annual));
        assert!(q.coverage(exact) > q.coverage(annual));
        assert_eq!(q.coverage(exact), 1.0);
        // A claim is checked on its words, not their order.
        let reordered = "16 hari cuti bagi pekerja tahunan";
        assert_eq!(
            QuestionTerms::words_only("16 hari cuti tahunan").coverage(reordered),
            1.0
        );
        assert_eq!(
            QuestionTerms::new("16 hari cuti tahunan").coverage(reordered),
            0.75
        );
        // A number without a unit is matched alone ("Akta 1955").
        let act = QuestionTerms::new("Akta Kerja 1955");
        assert_eq!(act.coverage("Seksyen 60 Akta Kerja 1955"), 1.0);
    }

    #[test]
    fn languages_of_questions() {
        assert_eq!(
            question_lang("Berapa hari cuti tahunan selepas 3 tahun berkhidmat?"),
            Lang::Ms
        );
        assert_eq!(
            question_lang("How many days of annual leave do I get after 3 years?"),
            Lang::En
        );
        assert_eq!(
            question_lang("Siapakah pemenang Piala Dunia 2018?"),
            Lang::Ms
        );
        assert_eq!(question_lang("What is the capital of Peru?"), Lang::En);
        // Titles and keywords, with neither question words nor stopwords.
        assert_eq!(
            question_lang("Rang Undang-Undang Perbekalan 2000"),
            Lang::Ms
        );
        assert_eq!(
            question_lang("Rang Undang-Undang Lembaga Perkhidmatan Kewangan (Pindaan) 2008"),
            Lang::Ms
        );
        assert_eq!(question_lang("Supply Bill 2000"), Lang::En);
        assert_eq!(question_lang("Gas Supply (Amendment) Bill 2016"), Lang::En);
    }

    #[test]
    fn sentences_split_with_offsets() {
        let t = "Syarikat Pelita Sdn. Bhd. memberi cuti. Pekerja layak 16 hari; Tuntutan RM 5,000.00 perlu kelulusan.\nBaris baru";
        let s = split_sentences(t);
        let texts: Vec<&str> = s.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Syarikat Pelita Sdn. Bhd. memberi cuti.",
                "Pekerja layak 16 hari;",
                "Tuntutan RM 5,000.00 perlu kelulusan.",
                "Baris baru"
            ]
        );
        let chars: Vec<char> = t.chars().collect();
        for x in &s {
            let back: String = chars[x.start..x.end].iter().collect();
            assert_eq!(back, x.text);
        }
    }

    #[test]
    fn numbers_fit_conditions() {
        let q = "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?";
        assert_eq!(
            numeric_fit(
                q,
                "Pekerja yang telah berkhidmat selama 2 hingga 5 tahun layak mendapat 16 hari"
            ),
            1.0
        );
        assert_eq!(
            numeric_fit(
                q,
                "berkhidmat kurang daripada 2 tahun layak mendapat 14 hari"
            ),
            -1.0
        );
        assert_eq!(
            numeric_fit(
                q,
                "lebih daripada 5 tahun tetapi tidak melebihi 10 tahun layak 20 hari"
            ),
            -1.0
        );
        assert_eq!(
            numeric_fit(q, "lebih daripada 10 tahun layak mendapat 24 hari"),
            -1.0
        );
        assert_eq!(
            numeric_fit(q, "Cuti tahunan dikira mengikut tahun kalendar."),
            0.0
        );
        let en = "Do I need three quotations for a RM8,000 purchase?";
        assert_eq!(
            numeric_fit(
                en,
                "Purchases above RM5,000 but not exceeding RM50,000 need three quotations"
            ),
            1.0
        );
        assert_eq!(
            numeric_fit(en, "Purchases above RM50,000 go to open tender"),
            -1.0
        );
        assert_eq!(
            numeric_fit("What is the capital of Peru?", "between 2 and 5 years"),
            0.0
        );
    }

    #[test]
    fn citations_are_checked() {
        let hits = vec![
            hit("Pekerja yang berkhidmat 2 hingga 5 tahun layak mendapat 16 hari cuti tahunan."),
            hit("Passwords must be at least 12 characters long."),
        ];
        let (text, cites) = check_citations(
            "Employees with 3 years of service get 16 hari cuti tahunan [1]. Passwords need 12 characters [2]. The moon is cheese [2]. Bonus [7].",
            &hits,
        );
        let ns: Vec<usize> = cites.iter().map(|c| c.n).collect();
        assert_eq!(ns, vec![1, 2]);
        assert!(text.contains("cheese ."), "{text}");
        assert!(!text.contains("[7]"), "{text}");
        assert!(text.contains("[1]") && text.contains("[2]"));
    }

    #[test]
    fn extractive_numbers_citations_once_per_passage() {
        let hits = vec![hit("A. B.")];
        let s = |t: &str| Scored {
            hit: 0,
            sentence: Sentence {
                text: t.into(),
                start: 0,
                end: 1,
            },
            score: 1.0,
        };
        let (text, cites) = extractive_answer(
            Lang::En,
            &hits,
            &[s("One two three four."), s("Five six seven eight.")],
        );
        assert_eq!(cites.len(), 1);
        assert!(text.starts_with("According to the documents:"));
        assert_eq!(text.matches("[1]").count(), 2);
    }
}
