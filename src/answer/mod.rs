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

use serde::Serialize;
use tanya_ingest::Lang;

use crate::config::AnswerMode;
use crate::query::SearchHit;

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
    /// True when the caller can see no document at all: the text says how to add some.
    pub nothing_indexed: bool,
    pub mode: AnswerMode,
    pub lang: Lang,
    /// What retrieval found, best first.
    pub passages: Vec<SearchHit>,
    /// Best cosine similarity between the question and a retrieved passage (the input
    /// of the abstention gate).
    pub relevance: f32,
    /// Share of the question's terms that the best sentence and its section headings
    /// say, in the question's language or the other one (extractive mode; below
    /// `answer.min_coverage` Tanya abstains).
    pub coverage: f32,
    /// Milliseconds spent retrieving, and answering after retrieval.
    pub retrieval_ms: f64,
    pub answer_ms: f64,
    /// Generative mode only: time to first token and decode speed.
    pub time_to_first_token_ms: Option<f64>,
    pub tokens_per_second: Option<f64>,
    /// Asked for generatively, but the model server failed before its first token: why
    /// (the error, e.g. "cannot reach the model server at …"). The answer was then made
    /// extractively (`mode` says so) from the same passages.
    pub fallback: Option<String>,
}

/// Streamed while answering.
#[derive(Debug, Clone)]
pub enum AnswerEvent {
    /// Retrieval is done: what the answer will be based on (shown at once).
    Passages(Vec<SearchHit>),
    /// A piece of generated text.
    Token(String),
}

mod citations;
mod extractive;
mod prompt;

pub use citations::{check_citations, supports};
pub use extractive::{extractive_answer, score_sentence, Scored, CHUNK_WEIGHT, NUMERIC_WEIGHT};
pub use prompt::prompt;

/// "The documents do not say", in the question's language.
pub fn abstain_text(lang: Lang) -> &'static str {
    match lang {
        Lang::Ms => "Dokumen yang ada tidak menyatakan perkara ini.",
        Lang::En => "The documents do not say.",
    }
}

/// What a client that shows only text says of an answer quoted because the model
/// server failed ([`Answer::fallback`]), in the question's language.
pub fn fallback_note(lang: Lang) -> &'static str {
    match lang {
        Lang::Ms => {
            "(Pelayan model bahasa tidak dapat menjawab, jadi jawapan ini dipetik terus daripada dokumen.)"
        }
        Lang::En => {
            "(The language model server could not answer, so this answer is quoted from the documents.)"
        }
    }
}

/// "Nothing is indexed yet", in the question's language, with what to do about it.
pub fn nothing_indexed_text(lang: Lang) -> &'static str {
    match lang {
        Lang::Ms => {
            "Belum ada dokumen yang diindeks: muat naik dokumen atau jalankan `tanya ingest`."
        }
        Lang::En => "Nothing is indexed yet: upload documents or run `tanya ingest`.",
    }
}

/// How an extractive answer opens, in the question's language `lang`; it says so when
/// the quote is in the other language (`quote`).
pub(crate) fn according_to(lang: Lang, quote: Lang) -> &'static str {
    match (lang, quote) {
        (Lang::Ms, Lang::Ms) => "Menurut dokumen:",
        (Lang::Ms, Lang::En) => "Menurut dokumen (petikan dalam bahasa Inggeris):",
        (Lang::En, Lang::En) => "According to the documents:",
        (Lang::En, Lang::Ms) => "According to the documents (quoted in Malay):",
    }
}

/// Document text as it may appear inside an answer: a citation marker in the document
/// ("[1]", "[23]") would read as one of the answer's own, and the page would make it a
/// chip pointing at a real source, so its brackets become fullwidth ("［1］"), which look
/// the same and mean nothing. The document's other words are data, quoted as they are.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(']') {
            out.push('［');
            out.push_str(&after[..digits]);
            out.push('］');
            rest = &after[digits + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The highest dense similarity among the hits (the relevance gate's input).
pub fn best_relevance(hits: &[SearchHit]) -> f32 {
    hits.iter()
        .filter_map(|h| h.dense.map(|d| d.1))
        .fold(f32::MIN, f32::max)
}

pub(crate) fn citation(n: usize, hit: usize, hits: &[SearchHit], quote: &str) -> Citation {
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

#[cfg(test)]
mod quote_tests {
    use super::quoted;

    #[test]
    fn markers_in_document_text_are_not_markers() {
        assert_eq!(
            quoted("see [1] [2] and [30]."),
            "see ［1］ ［2］ and ［30］."
        );
        assert_eq!(quoted("a [b] [1a] [ 2] []"), "a [b] [1a] [ 2] []");
        assert_eq!(quoted("[[1]]"), "[［1］]");
        assert_eq!(quoted("tiada"), "tiada");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;
    use crate::text::sentences::Sentence;

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
            fit: 0.0,
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
