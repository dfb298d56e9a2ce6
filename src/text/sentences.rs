//! Sentence splitting of passage text, with char offsets.

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

/// Whether a sentence is worth its own vector: fragments under 4 words answer nothing,
/// and over 120 words it is a list or table that the chunk vector covers already.
pub fn answerable_length(sentence: &str) -> bool {
    (4..=120).contains(&sentence.split_whitespace().count())
}
