//! A question's terms: stemmed words, quantities matched whole ("3 tahun") and
//! adjacent word pairs, counted against a passage under both analysers.

use std::collections::HashMap;

use crate::text::analysis::{analyze, Analyzer};

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
        self.coverage_of(&Analysed::new(text))
    }

    /// [`Self::coverage`] of a text analysed once.
    pub fn coverage_of(&self, text: &Analysed) -> f32 {
        let mut best: f32 = 0.0;
        for (analyzer, q) in &self.by_analyzer {
            if q.len == 0 {
                continue;
            }
            best = best.max(q.share_in(text.by(*analyzer)));
        }
        best
    }
}

/// A text analysed under both analysers, once, for scoring it against several
/// questions' terms (a follow-up's own and the combined question's).
#[derive(Debug, Clone)]
pub struct Analysed {
    malay: Vec<String>,
    english: Vec<String>,
}

impl Analysed {
    pub fn new(text: &str) -> Self {
        Analysed {
            malay: analyze(text, Analyzer::Malay),
            english: analyze(text, Analyzer::English),
        }
    }

    /// The terms under `analyzer`.
    pub fn by(&self, analyzer: Analyzer) -> &[String] {
        match analyzer {
            Analyzer::Malay => &self.malay,
            Analyzer::English => &self.english,
        }
    }
}

/// Words of asking rather than of a topic, in both languages and colloquial spellings:
/// that no passage says them tells nothing.
const ASKING_WORDS: &[&str] = &[
    "ada",
    "ambik",
    "apa",
    "berapa",
    "berapakah",
    "bila",
    "boleh",
    "brp",
    "can",
    "dah",
    "dapat",
    "due",
    "get",
    "kena",
    "lama",
    "long",
    "made",
    "mahu",
    "mana",
    "many",
    "much",
    "nak",
    "need",
    "often",
    "pula",
    "pulak",
    "sent",
    "siapa",
    "tak",
    "take",
];

/// Whether a word of a question names something (rather than asking, or being a number).
pub fn is_content_word(word: &str) -> bool {
    !ASKING_WORDS.contains(&word) && !word.chars().any(|c| c.is_ascii_digit())
}

/// A question's terms in its own language and, carried by a lexicon, in the other one: a
/// passage in either language can cover them.
#[derive(Debug, Clone)]
pub struct EitherLanguage {
    own: QuestionTerms,
    from: Analyzer,
    /// The question's words as written, with their stems under `from`.
    words: Vec<(String, String)>,
    carried: Option<crate::text::lexicon::Translation>,
}

impl EitherLanguage {
    /// The terms of `question`, written in `from`'s language, and their translation.
    pub fn new(question: &str, from: Analyzer, lexicon: &crate::text::lexicon::Lexicon) -> Self {
        let carried = (!lexicon.is_empty())
            .then(|| lexicon.translate(question, from))
            .filter(|t| !t.is_empty());
        EitherLanguage {
            own: QuestionTerms::new(question),
            from,
            words: crate::text::analysis::analyze_words(question, from),
            carried,
        }
    }

    /// The better of the question's own coverage of `text` and its translation's.
    pub fn coverage(&self, text: &str) -> f32 {
        self.coverage_of(&Analysed::new(text))
    }

    /// [`Self::coverage`] of a text analysed once.
    pub fn coverage_of(&self, text: &Analysed) -> f32 {
        let own = self.own.coverage_of(text);
        match &self.carried {
            Some(t) => own.max(t.coverage_of(text.by(t.to))),
            None => own,
        }
    }

    /// The question's content words (as written) that none of `texts` says, in either
    /// language.
    pub fn missing(&self, texts: &[String]) -> Vec<String> {
        let own: std::collections::HashSet<String> =
            texts.iter().flat_map(|t| analyze(t, self.from)).collect();
        let said_other: Vec<&str> = match &self.carried {
            Some(t) => {
                let other: std::collections::HashSet<String> =
                    texts.iter().flat_map(|x| analyze(x, t.to)).collect();
                t.slots
                    .iter()
                    .filter(|s| {
                        s.alternatives
                            .iter()
                            .any(|a| a.iter().all(|w| other.contains(w)))
                    })
                    .flat_map(|s| s.source.split(' '))
                    .collect()
            }
            None => Vec::new(),
        };
        self.words
            .iter()
            .filter(|(raw, stem)| {
                is_content_word(raw) && !own.contains(stem) && !said_other.contains(&raw.as_str())
            })
            .map(|(raw, _)| raw.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
