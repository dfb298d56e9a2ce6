//! The one language detector, for documents' chunks and for questions alike.
//!
//! Function words vote first: every word in [`MALAY_STOPWORDS`] or [`ENGLISH_STOPWORDS`], and a
//! few words that mark a question or a policy text in one language ([`MALAY_CUES`],
//! [`ENGLISH_CUES`]), count for their language. Text where the votes tie — a title, a few
//! keywords, a table, "Rang Undang-Undang Perbekalan 2000" — has no function word to tell, and
//! goes to lingua's English and Malay character n-gram models, which tell the two apart on a few
//! words (docs/quality.md §9). Text without a word of three letters or more is English, the safer
//! default for the downstream analysers.

use serde::{Deserialize, Serialize};

use crate::text::{ENGLISH_STOPWORDS, MALAY_STOPWORDS};

/// The two languages of the corpus. English is the tie-break everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Bahasa Melayu.
    Ms,
    /// English.
    En,
}

impl Lang {
    /// The ISO 639-1 code, as used in serialised form: `"ms"` or `"en"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ms => "ms",
            Lang::En => "en",
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Malay words that are not function words but mark a question or a policy text as Malay.
/// Sorted, disjoint from both stopword lists.
pub const MALAY_CUES: &[&str] = &[
    "bulan", "cuti", "hari", "harus", "ke", "pekerja", "syarikat", "tahun", "tuntutan",
];

/// English words that are not function words but mark a question or a policy text as English.
/// Sorted, disjoint from both stopword lists.
pub const ENGLISH_CUES: &[&str] = &[
    "claim",
    "days",
    "employee",
    "employees",
    "leave",
    "many",
    "much",
    "years",
];

/// The language `text` is written in: a chunk of a document or a question.
pub fn detect_lang(text: &str) -> Lang {
    let (ms, en) = votes(text);
    match ms.cmp(&en) {
        std::cmp::Ordering::Greater => Lang::Ms,
        std::cmp::Ordering::Less => Lang::En,
        std::cmp::Ordering::Equal => by_ngrams(text),
    }
}

/// Malay and English votes: one per word found in a language's stopwords or cues. A word
/// abbreviated before a number ("No. 3", "Bil. 2") is a label, not language, and does not vote.
fn votes(text: &str) -> (usize, usize) {
    let (mut ms, mut en) = (0usize, 0usize);
    let mut word = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(char::is_alphabetic) {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(tail.len());
        let (token, after) = tail.split_at(end);
        rest = after;
        if token.len() > 16 || labels_a_number(after) {
            continue;
        }
        word.clear();
        word.extend(token.chars().flat_map(char::to_lowercase));
        let w = word.as_str();
        if MALAY_STOPWORDS.binary_search(&w).is_ok() || MALAY_CUES.binary_search(&w).is_ok() {
            ms += 1;
        } else if ENGLISH_STOPWORDS.binary_search(&w).is_ok()
            || ENGLISH_CUES.binary_search(&w).is_ok()
        {
            en += 1;
        }
    }
    (ms, en)
}

/// Whether the text after a word is a full stop and then a number: "No. 3", "Bil.2".
fn labels_a_number(after: &str) -> bool {
    after
        .strip_prefix('.')
        .is_some_and(|r| r.trim_start().starts_with(|c: char| c.is_ascii_digit()))
}

/// Lingua's verdict on text whose function words tie. Text without a word of three letters or
/// more ("RM 5,000.00", "3(a)") gives the models nothing to read and stays English.
fn by_ngrams(text: &str) -> Lang {
    let has_word = text
        .split(|c: char| !c.is_alphabetic())
        .any(|w| w.chars().count() >= 3);
    if !has_word {
        return Lang::En;
    }
    match NGRAM_DETECTOR.detect_language_of(text) {
        Some(lingua::Language::Malay) => Lang::Ms,
        Some(_) | None => Lang::En,
    }
}

/// English and Malay n-gram models (lingua), loaded the first time a tie needs them.
static NGRAM_DETECTOR: std::sync::LazyLock<lingua::LanguageDetector> =
    std::sync::LazyLock::new(|| {
        lingua::LanguageDetectorBuilder::from_languages(&[
            lingua::Language::English,
            lingua::Language::Malay,
        ])
        .with_preloaded_language_models()
        .build()
    });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cue_lists_are_sorted_and_vote_for_one_language() {
        for list in [MALAY_CUES, ENGLISH_CUES] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?} not sorted");
        }
        for w in MALAY_CUES.iter().chain(ENGLISH_CUES) {
            assert!(!MALAY_STOPWORDS.contains(w), "{w} is a Malay stopword");
            assert!(!ENGLISH_STOPWORDS.contains(w), "{w} is an English stopword");
        }
        for w in MALAY_CUES {
            assert!(!ENGLISH_CUES.contains(w), "{w} in both cue lists");
        }
    }

    #[test]
    fn documents() {
        let ms = "Pekerja yang telah berkhidmat tidak kurang daripada dua belas bulan adalah \
                  layak untuk cuti tahunan dan hendaklah memohon kepada ketua jabatan.";
        let en = "Employees who have served for at least twelve months are entitled to annual \
                  leave and shall apply to the head of department.";
        assert_eq!(detect_lang(ms), Lang::Ms);
        assert_eq!(detect_lang(en), Lang::En);
        assert_eq!(detect_lang(""), Lang::En);
        assert_eq!(detect_lang("RM 5,000.00"), Lang::En);
        // A table of names and figures, no function word: the n-gram models decide.
        assert_eq!(
            detect_lang("Jadual Elaun Perjalanan Pegawai Kerajaan | RM 1,200"),
            Lang::Ms
        );
        assert_eq!(serde_json::to_string(&Lang::Ms).unwrap(), "\"ms\"");
    }

    #[test]
    fn questions() {
        for (q, lang) in [
            (
                "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?",
                Lang::Ms,
            ),
            (
                "How many days of annual leave do I get after 3 years?",
                Lang::En,
            ),
            ("Siapakah pemenang Piala Dunia 2018?", Lang::Ms),
            ("What is the capital of Peru?", Lang::En),
        ] {
            assert_eq!(detect_lang(q), lang, "{q}");
        }
    }

    #[test]
    fn titles_and_keywords_go_to_the_ngram_models() {
        // Neither question words nor stopwords: the votes tie at zero.
        for (q, lang) in [
            ("Rang Undang-Undang Perbekalan 2000", Lang::Ms),
            (
                "Rang Undang-Undang Lembaga Perkhidmatan Kewangan (Pindaan) 2008",
                Lang::Ms,
            ),
            ("Supply Bill 2000", Lang::En),
            ("Gas Supply (Amendment) Bill 2016", Lang::En),
            ("Elaun perjalanan pegawai kanan", Lang::Ms),
            // "No." before a number is a label in both languages, not the English "no".
            ("RUU Perlembagaan (Pindaan) (No. 3) 2022", Lang::Ms),
            ("Rang Undang-undang Kewangan (No.2)  2014", Lang::Ms),
            ("Supply (No. 2) Bill 2014", Lang::En),
        ] {
            assert_eq!(votes(q).0, votes(q).1, "{q}");
            assert_eq!(detect_lang(q), lang, "{q}");
        }
    }
}
