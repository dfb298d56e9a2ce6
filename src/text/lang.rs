//! The language of a question: question words first, then lingua's English/Malay
//! n-gram models for titles and keywords.

use tanya_ingest::Lang;

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
    let words: Vec<String> = crate::text::analysis::tokenize(question);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
