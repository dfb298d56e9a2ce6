//! Text analysis shared by indexing and querying: tokens, stopwords, stemming (Malay:
//! Snowball Indonesian from frostem, Malay stopwords; English: Snowball English).

use frostem::{Algorithm, Stemmer};
use tanya_ingest::text::{ENGLISH_STOPWORDS, MALAY_STOPWORDS};

/// Which stemmer an analysed field uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analyzer {
    Malay,
    English,
}

impl Analyzer {
    /// The analyser of text in `lang`.
    pub fn of(lang: tanya_ingest::Lang) -> Self {
        match lang {
            tanya_ingest::Lang::Ms => Analyzer::Malay,
            tanya_ingest::Lang::En => Analyzer::English,
        }
    }
}

thread_local! {
    static MS_STEMMER: Stemmer = Stemmer::new(Algorithm::Indonesian);
    static EN_STEMMER: Stemmer = Stemmer::new(Algorithm::English);
}

/// Splits `text` into lowercase word tokens: letters and digits; digits keep inner `,`
/// and `.` removed ("5,000" → "5000", "3.5" → "35" is avoided by keeping the dot as a
/// separator only between digit groups of three).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if c == ','
            && !cur.is_empty()
            && cur.chars().last().is_some_and(|d| d.is_ascii_digit())
            && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
            && chars.get(i + 4).is_none_or(|d| !d.is_ascii_digit())
        {
            // Thousands separator: keep the number whole.
        } else if !cur.is_empty() {
            tokens.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

/// Analysed terms of `text` for one field: tokens, minus stopwords, stemmed.
pub fn analyze(text: &str, analyzer: Analyzer) -> Vec<String> {
    analyze_words(text, analyzer)
        .into_iter()
        .map(|(_, stem)| stem)
        .collect()
}

/// [`analyze`], keeping each term's token as written (lowercased) beside its stem.
pub fn analyze_words(text: &str, analyzer: Analyzer) -> Vec<(String, String)> {
    let stop: &[&str] = match analyzer {
        Analyzer::Malay => MALAY_STOPWORDS,
        Analyzer::English => ENGLISH_STOPWORDS,
    };
    tokenize(text)
        .into_iter()
        // Both lists are sorted (a test in tanya-ingest checks it).
        .filter(|t| stop.binary_search(&t.as_str()).is_err())
        .map(|t| {
            if t.chars().any(|c| c.is_ascii_digit()) || t.chars().count() < 4 {
                return (t.clone(), t);
            }
            let stem = match analyzer {
                Analyzer::Malay => MS_STEMMER.with(|s| s.stem(&t).into_owned()),
                Analyzer::English => EN_STEMMER.with(|s| s.stem(&t).into_owned()),
            };
            (t, stem)
        })
        .filter(|(_, stem)| !stem.is_empty())
        .collect()
}
