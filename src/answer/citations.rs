//! Checking the `[n]` citations of generated text against the passages it was given.

use super::{citation, Citation};
use crate::query::SearchHit;
use crate::text::analysis::{analyze, Analyzer};
use crate::text::terms::lexical_overlap;

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
