//! Whether a question in a conversation is elliptical — it needs the previous turn to be
//! understood ("kalau ke Sabah?", "and for non-execs?", "does that cover my family
//! too?") — or complete on its own ("How often are fire drills held?"), in Malay and
//! English, formal and colloquial.

use crate::text::analysis::tokenize;
use crate::text::terms::is_content_word;

/// Words that open a follow-up: "and …", "what about …", "kalau …", "bagaimana pula …".
const OPENERS: &[&[&str]] = &[
    &["and"],
    &["what", "about"],
    &["how", "about"],
    &["what", "if"],
    &["same", "for"],
    &["also"],
    &["or"],
    &["dan"],
    &["kalau"],
    &["kalo"],
    &["klu"],
    &["jika"],
    &["bagaimana", "pula"],
    &["bagaimana", "dengan"],
    &["macam", "mana", "pula"],
    &["camne", "pula"],
    &["habis"],
    &["atau"],
];

/// Words that close one: "… pula?", "… too?".
const CLOSERS: &[&str] = &["pula", "pulak", "plak", "too", "also", "juga", "jugak"];

/// Words that point back at the previous turn.
const POINTERS: &[&str] = &[
    "that", "this", "it", "they", "them", "those", "these", "same", "itu", "tersebut", "ini",
    "dia", "sama",
];

/// Words a question uses to ask or to talk about the asker, which name no topic.
const NO_TOPIC: &[&str] = &[
    "what",
    "which",
    "who",
    "whom",
    "when",
    "where",
    "why",
    "how",
    "is",
    "are",
    "was",
    "be",
    "do",
    "does",
    "did",
    "i",
    "me",
    "my",
    "we",
    "our",
    "you",
    "can",
    "could",
    "will",
    "would",
    "should",
    "must",
    "the",
    "a",
    "an",
    "of",
    "for",
    "to",
    "in",
    "on",
    "at",
    "by",
    "with",
    "saya",
    "aku",
    "kami",
    "kita",
    "yang",
    "untuk",
    "bagi",
    "ke",
    "di",
    "dari",
    "daripada",
    "dengan",
    "oleh",
    "pada",
    "siapa",
    "apa",
    "apakah",
    "bila",
    "bilakah",
    "mana",
    "manakah",
    "bagaimana",
    "berapa",
    "berapakah",
    "brp",
    "adakah",
    "ada",
    "boleh",
    "perlu",
    "kena",
    "tak",
    "tidak",
    "ke",
    "lagi",
    "pun",
    "je",
    "ja",
    "kah",
    "luluskan",
    "approve",
    "approves",
];

/// Whether `question`, asked after another, depends on it.
pub fn is_elliptical(question: &str) -> bool {
    let words = tokenize(question);
    if words.is_empty() {
        return true;
    }
    let opens = OPENERS
        .iter()
        .any(|o| words.len() >= o.len() && words[..o.len()] == **o);
    let closes = words.last().is_some_and(|w| CLOSERS.contains(&w.as_str()));
    // "IT" (the department) is not "it": pointers count only in lower case.
    let points = question
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| POINTERS.contains(&w));
    let topics = words
        .iter()
        .filter(|w| !NO_TOPIC.contains(&w.as_str()) && is_content_word(w))
        .count();
    opens || closes || points || topics <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_and_new_questions() {
        for q in [
            "kalau ke Sabah?",
            "kalau ke Singapura pulak?",
            "siapa boleh luluskan?",
            "and for emergency purchases?",
            "above 10k?",
            "untuk isteri dan anak2 pulak?",
            "and for non-execs?",
            "does that cover my family too?",
            "bagaimana pula selepas 10 tahun?",
            "And for someone with more than 5 years?",
        ] {
            assert!(is_elliptical(q), "{q}");
        }
        for q in [
            "How often are fire drills held?",
            "How much PelitaDrive storage do I get?",
            "manfaat optik brp?",
            "Which AI tools has IT approved for internal use?",
            "What is the mileage rate for claims?",
            "Berapa hari cuti sakit bagi pekerja baharu?",
        ] {
            assert!(!is_elliptical(q), "{q}");
        }
    }
}
