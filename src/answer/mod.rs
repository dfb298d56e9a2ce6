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

pub(crate) fn according_to(lang: Lang) -> &'static str {
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
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;
    use crate::text::lang::question_lang;
    use crate::text::quantities::numeric_fit;
    use crate::text::sentences::split_sentences;
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
