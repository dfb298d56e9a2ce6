//! Text normalisation shared by every parser, PDF line joining (with Malay-aware de-hyphenation),
//! sentence spans for the chunker, and the Malay and English stopword lists.
//!
//! Everything here is deterministic and allocation-light; nothing here knows about formats.

use unicode_normalization::UnicodeNormalization;

/// Malay function words (particles, prepositions, conjunctions, pronouns, auxiliaries, question
/// words and the modal/obligation words of policy prose). Lowercase, no duplicates, disjoint from
/// [`ENGLISH_STOPWORDS`] so that a word votes for one language only.
#[rustfmt::skip]
pub const MALAY_STOPWORDS: &[&str] = &[
    "ada", "adakah", "adalah", "adapun", "agak", "agaknya", "agar", "akan", "akhirnya", "aku",
    "amat", "anda", "antara", "apa", "apabila", "apakah", "apapun", "atas", "atau", "ataupun",
    "bagaimana", "bagaimanakah", "bagaimanapun", "bagi", "bahawa", "bahawasanya", "bahkan", "bakal",
    "banyak", "barangkali", "beberapa", "begini", "begitu", "belaka", "beliau", "belum", "berapa",
    "berapakah", "berikut", "bersama", "beserta", "betapa", "biarpun", "bila", "bilakah",
    "bilamana", "boleh", "bukan", "bukankah", "cuma", "dahulu", "dalam", "dalamnya", "dan", "dapat",
    "dari", "daripada", "demi", "dengan", "dengannya", "di", "dia", "dirinya", "hampir", "hanya",
    "hendak", "hendaklah", "hingga", "ia", "iaitu", "ialah", "ini", "inilah", "itu", "itulah",
    "jadi", "jangan", "jika", "jikalau", "juga", "justeru", "kalau", "kami", "kamu", "kan",
    "kecuali", "kelak", "kemudian", "kenapa", "kepada", "kepadanya", "kerana", "ketika", "kini",
    "kita", "lagi", "lah", "lain", "lalu", "lantaran", "lebih", "mahupun", "maka", "malah",
    "malahan", "mana", "manakah", "manakala", "masih", "melainkan", "menerusi", "mengapa",
    "mengenai", "menurut", "mereka", "merupakan", "meskipun", "mesti", "misalnya", "mungkin",
    "namun", "nanti", "oleh", "olehnya", "pada", "padahal", "padanya", "paling", "para", "perlu",
    "pernah", "pula", "pun", "sahaja", "saja", "sangat", "saya", "sebab", "sebagai", "sebagaimana",
    "sebaliknya", "sebarang", "sebelum", "seberapa", "sedang", "sedangkan", "sedikit", "segala",
    "sehingga", "sejak", "sekalipun", "sekiranya", "selain", "selama", "selepas", "semasa",
    "sementara", "semua", "sendiri", "seperti", "sering", "serta", "seseorang", "sesuatu",
    "setelah", "setiap", "sewaktu", "siapa", "siapakah", "sila", "suatu", "sudah", "supaya",
    "tanpa", "telah", "tentang", "terdapat", "terhadap", "terlalu", "termasuk", "tersebut",
    "tetapi", "tiada", "tiap", "tidak", "turut", "umpamanya", "untuk", "walau", "walaupun", "yakni",
    "yang",
];

/// English function words, lowercase, disjoint from [`MALAY_STOPWORDS`].
#[rustfmt::skip]
pub const ENGLISH_STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "either",
    "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in", "into", "is",
    "it", "its", "itself", "may", "me", "might", "more", "most", "must", "my", "myself", "neither",
    "no", "nor", "not", "of", "off", "on", "once", "only", "or", "other", "otherwise", "our",
    "ours", "ourselves", "out", "over", "own", "per", "same", "shall", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
    "there", "thereof", "these", "they", "this", "those", "through", "thus", "to", "too", "under",
    "unless", "until", "up", "upon", "very", "via", "was", "we", "were", "what", "when", "where",
    "whereas", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with",
    "within", "without", "would", "you", "your", "yours", "yourself", "yourselves",
];

/// Characters removed outright: soft hyphen, zero-width space, BOM / zero-width no-break space.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}' | '\u{FEFF}')
}

/// NFKC-normalises `text` (which also expands ligatures such as `ﬁ`), drops NUL, other control
/// characters and invisible characters, and keeps line structure: every kind of line break
/// becomes `\n`, other whitespace runs become one space, and lines are trimmed at the end.
pub fn normalize_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut prev_cr = false;
    for c in text.nfkc() {
        let is_cr = c == '\r';
        if c == '\n' && prev_cr {
            prev_cr = false;
            continue;
        }
        prev_cr = is_cr;
        if matches!(
            c,
            '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        ) {
            pending_space = false;
            while out.ends_with(' ') {
                out.pop();
            }
            out.push('\n');
        } else if c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() || is_invisible(c) {
            continue;
        } else {
            if pending_space && !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Normalises one paragraph: [`normalize_lines`] semantics, then every whitespace run
/// (including line breaks) becomes a single space and the ends are trimmed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfkc() {
        if c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() || is_invisible(c) {
            continue;
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// Stems that form imitative or rhyming reduplications (`sayur-mayur`, `tolong-menolong`), where
/// the part after the hyphen does not literally repeat the part before it.
#[rustfmt::skip]
const REDUPLICANT_STEMS: &[&str] = &[
    "adat", "asal", "bantu", "bolak", "cerai", "compang", "gotong", "hal", "hiruk", "huru",
    "kacau", "kuih", "lalu", "lauk", "porak", "pukul", "ramah", "saudara", "sayur", "serba",
    "simpang", "surat", "teka", "tolong", "tunggang", "warna",
];

/// Joins the lines of one PDF paragraph into one line, undoing end-of-line hyphenation.
///
/// `pekerja-` + `an` becomes `pekerjaan`, but the hyphen stays when it is Malay reduplication
/// (`sekurang-` + `kurangnya`, `kanak-` + `kanak`, `tolong-` + `menolong`), or when the next
/// fragment starts with an uppercase letter or a digit (`Pra-` + `Sekolah`, `COVID-` + `19`).
/// Other line breaks become a space. The result is normalised with [`normalize`].
pub fn join_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str(line);
            continue;
        }
        match hyphen_join(&out, line) {
            Some(true) => {}
            Some(false) => {
                out.pop();
            }
            None => out.push(' '),
        }
        out.push_str(line);
    }
    normalize(&out)
}

/// De-hyphenates line breaks inside `text` (lines separated by `\n`), keeping paragraph
/// structure out of it: the whole text is joined into one line. See [`join_lines`].
pub fn dehyphenate(text: &str) -> String {
    join_lines(text.lines())
}

/// Decides how `prev` (ending a line) joins `next` (starting the following line).
/// `None`: not a hyphenated break. `Some(true)`: keep the hyphen. `Some(false)`: drop it.
fn hyphen_join(prev: &str, next: &str) -> Option<bool> {
    let before_hyphen = prev.strip_suffix('-')?;
    // The word fragment before the hyphen: trailing letters only.
    let stem_start = before_hyphen
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric())
        .last()
        .map(|(i, _)| i)?;
    let before = &before_hyphen[stem_start..];
    let first = next.chars().next()?;
    if first.is_uppercase() || first.is_ascii_digit() || !first.is_alphabetic() {
        return Some(true);
    }
    if before.chars().any(|c| c.is_ascii_digit()) {
        return Some(true);
    }
    let after: String = next
        .chars()
        .take_while(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    let before: String = before.chars().flat_map(char::to_lowercase).collect();
    Some(is_reduplication(&before, &after))
}

/// True when `before`-`after` reads as Malay reduplication: a suffix of `before` of at least
/// three letters is repeated at the start of `after` (`sekurang`/`kurangnya`,
/// `kanak`/`kanak`), short words repeat exactly, or `before` is a known imitative stem.
fn is_reduplication(before: &str, after: &str) -> bool {
    if REDUPLICANT_STEMS.contains(&before) {
        return true;
    }
    let b: Vec<char> = before.chars().collect();
    let a: Vec<char> = after.chars().collect();
    let max = b.len().min(a.len());
    if b.len() < 3 {
        return !b.is_empty() && a == b;
    }
    (3..=max).any(|n| a.starts_with(&b[b.len() - n..]))
}

/// Abbreviations after which a full stop does not end a sentence (lowercase, without the dot).
#[rustfmt::skip]
const ABBREVIATIONS: &[&str] = &[
    "art", "bhd", "bil", "cf", "co", "dll", "dr", "dsb", "e.g", "eg", "en", "encik", "etc", "hb", "hj",
    "i.e", "ie", "inc", "jl", "jln", "kg", "ltd", "mr", "mrs", "ms", "no", "nos", "para", "pn",
    "pp", "prof", "sdn", "sek", "sr", "st", "tel", "tn", "vol", "vs",
];

/// Byte spans of the sentences of one normalised paragraph.
///
/// A sentence ends at `.`, `?`, `!` or `;` (plus closing quotes or brackets) followed by
/// whitespace. A full stop does not end a sentence after a known abbreviation (`Sdn.`, `e.g.`),
/// after a single letter (`A. Rahman`), after a clause number at the start of a sentence
/// (`3.1`, `2.`), or when the next word starts in lowercase. `RM 5,000.00` never splits because
/// no space follows the inner dot. Whitespace between sentences belongs to no span; every other
/// character belongs to exactly one span.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let skip_ws = |mut i: usize| {
        while i < text.len() {
            let c = text[i..].chars().next().unwrap_or(' ');
            if !c.is_whitespace() {
                break;
            }
            i += c.len_utf8();
        }
        i
    };
    let mut start = skip_ws(0);
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if i < start || !matches!(c, '.' | '?' | '!' | ';') {
            continue;
        }
        // Include closing quotes and brackets in the sentence.
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = iter.peek() {
            if matches!(d, ')' | ']' | '"' | '\'' | '’' | '”' | '»') {
                end = j + d.len_utf8();
                iter.next();
            } else {
                break;
            }
        }
        let next_char = text[end..].chars().next();
        if !next_char.is_some_and(char::is_whitespace) {
            continue;
        }
        let next_start = skip_ws(end);
        if next_start >= text.len() {
            break;
        }
        if c == '.' && !full_stop_ends_sentence(text, start, i, next_start) {
            continue;
        }
        spans.push((start, end));
        start = next_start;
    }
    let trimmed_end = text.trim_end().len();
    if start < trimmed_end {
        spans.push((start, trimmed_end));
    }
    spans
}

fn full_stop_ends_sentence(
    text: &str,
    sentence_start: usize,
    dot: usize,
    next_start: usize,
) -> bool {
    let token_start = text[..dot]
        .char_indices()
        .rev()
        .take_while(|(_, c)| !c.is_whitespace())
        .last()
        .map_or(dot, |(i, _)| i);
    let token = text[token_start..dot].trim_start_matches(['(', '[', '"', '\'', '‘', '“']);
    let lower = token.to_lowercase();
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return false;
    }
    let mut letters = token.chars().filter(|c| c.is_alphabetic());
    if letters.next().is_some() && letters.next().is_none() && token.chars().count() == 1 {
        return false;
    }
    let is_number = !token.is_empty()
        && token.chars().all(|c| c.is_ascii_digit() || c == '.')
        && token.chars().next().is_some_and(|c| c.is_ascii_digit());
    if is_number && token_start <= sentence_start {
        return false;
    }
    let is_roman = !token.is_empty() && token.chars().all(|c| "ivxlcIVXLC".contains(c));
    if is_roman && token_start <= sentence_start && token.len() <= 4 {
        return false;
    }
    let next = text[next_start..].chars().next();
    !next.is_some_and(char::is_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        sentence_spans(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect()
    }

    #[test]
    fn stopword_lists_are_sorted_unique_and_disjoint() {
        for list in [MALAY_STOPWORDS, ENGLISH_STOPWORDS] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
            assert!(list.iter().all(|w| *w == w.to_lowercase()));
        }
        assert!(MALAY_STOPWORDS.len() >= 150, "{}", MALAY_STOPWORDS.len());
        for w in MALAY_STOPWORDS {
            assert!(!ENGLISH_STOPWORDS.contains(w), "{w} in both lists");
        }
    }

    #[test]
    fn nfkc_fixes_ligatures_and_strips_controls() {
        assert_eq!(
            normalize("ﬁnal  ﬂow\u{0}\u{7}  of\tdata\u{AD}"),
            "final flow of data"
        );
        assert_eq!(normalize("  a \n\n b  "), "a b");
        assert_eq!(normalize_lines("a\r\nb\rc  \n d\u{1}"), "a\nb\nc\nd");
    }

    #[test]
    fn dehyphenates_ordinary_words() {
        assert_eq!(dehyphenate("pekerja-\nan tetap"), "pekerjaan tetap");
        assert_eq!(dehyphenate("peng-\ngunaan"), "penggunaan");
        assert_eq!(dehyphenate("pendi-\ndikan"), "pendidikan");
        assert_eq!(dehyphenate("employ-\nment contract"), "employment contract");
        assert_eq!(dehyphenate("two\nlines"), "two lines");
    }

    #[test]
    fn keeps_hyphen_in_malay_reduplication() {
        assert_eq!(dehyphenate("sekurang-\nkurangnya"), "sekurang-kurangnya");
        assert_eq!(dehyphenate("kanak-\nkanak"), "kanak-kanak");
        assert_eq!(dehyphenate("undang-\nundang kecil"), "undang-undang kecil");
        assert_eq!(dehyphenate("masing-\nmasing"), "masing-masing");
        assert_eq!(dehyphenate("sebaik-\nbaiknya"), "sebaik-baiknya");
        assert_eq!(dehyphenate("tolong-\nmenolong"), "tolong-menolong");
        assert_eq!(dehyphenate("sayur-\nmayur"), "sayur-mayur");
        assert_eq!(dehyphenate("apa-\napa"), "apa-apa");
    }

    #[test]
    fn keeps_hyphen_before_uppercase_or_digit() {
        assert_eq!(dehyphenate("Pra-\nSekolah"), "Pra-Sekolah");
        assert_eq!(dehyphenate("COVID-\n19"), "COVID-19");
        assert_eq!(dehyphenate("ms-\n(a)"), "ms-(a)");
    }

    #[test]
    fn splits_sentences_carefully() {
        assert_eq!(
            sentences("Gaji ialah RM 5,000.00 sebulan. Elaun dibayar berasingan."),
            [
                "Gaji ialah RM 5,000.00 sebulan.",
                "Elaun dibayar berasingan."
            ]
        );
        assert_eq!(
            sentences("Dibekalkan oleh ABC Sdn. Bhd. kepada kerajaan. Tamat."),
            ["Dibekalkan oleh ABC Sdn. Bhd. kepada kerajaan.", "Tamat."]
        );
        assert_eq!(
            sentences("Use tools, e.g. hammers. Then stop!  Why? Because; reasons"),
            [
                "Use tools, e.g. hammers.",
                "Then stop!",
                "Why?",
                "Because;",
                "reasons"
            ]
        );
        assert_eq!(
            sentences("3.1 Pekerja layak. 2. Cuti dipohon. A. Rahman signed (see above.) Done"),
            [
                "3.1 Pekerja layak.",
                "2. Cuti dipohon.",
                "A. Rahman signed (see above.)",
                "Done"
            ]
        );
        assert_eq!(sentences("   "), Vec::<&str>::new());
        assert_eq!(sentences("No full stop"), ["No full stop"]);
    }
}
