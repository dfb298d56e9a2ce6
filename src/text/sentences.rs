//! The one sentence splitter of passage text, with char offsets: a line break always
//! ends a sentence (list items, table rows, headings), and inside a line
//! [`tanya_ingest::text::sentence_spans`] decides — the same rule the chunker uses, so
//! a sentence vector, a quoted answer and a chunk boundary agree on what a sentence is.

/// A sentence of a passage, with its char offsets inside the passage text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Splits passage text into sentences (see the module comment). Offsets count chars.
pub fn split_sentences(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut line_start_char = 0;
    for line in text.split('\n') {
        // Byte offset → char offset within the line, walked once per line.
        let mut chars_before = 0;
        let mut last_byte = 0;
        let mut char_at = |byte: usize| {
            chars_before += line[last_byte..byte].chars().count();
            last_byte = byte;
            chars_before
        };
        for (a, b) in tanya_ingest::text::sentence_spans(line) {
            let piece = &line[a..b];
            let trimmed = piece.trim();
            if trimmed.is_empty() {
                continue;
            }
            let lead = piece.len() - piece.trim_start().len();
            let start = line_start_char + char_at(a + lead);
            out.push(Sentence {
                text: trimmed.to_string(),
                start,
                end: start + trimmed.chars().count(),
            });
        }
        line_start_char += line.chars().count() + 1;
    }
    out
}

/// Whether a sentence is worth its own vector: fragments under 4 words answer nothing,
/// and over 120 words it is a list or table that the chunk vector covers already.
pub fn answerable_length(sentence: &str) -> bool {
    (4..=120).contains(&sentence.split_whitespace().count())
}

/// Whether a "sentence" is a label rather than a statement: a numbered heading ("4.2
/// Waktu Masuk dan Waktu Teras"), a line in capitals ("SYARIKAT PELITA NUSANTARA SDN.
/// BHD."), or a decoration ("-- Akhir Dokumen --"). An answer never quotes one. A table
/// row ("Gred 41 | 25 hari") is not a label.
pub fn is_label(sentence: &str) -> bool {
    let t = sentence.trim();
    if t.contains('|') {
        return false;
    }
    let mut letters = t.chars().filter(|c| c.is_alphabetic()).peekable();
    let capitals = letters.peek().is_some() && letters.all(|c| !c.is_lowercase());
    let decoration = t.starts_with("--") || t.ends_with("--");
    // "4.2", "4." or "4" as the first word (a year, "2024 was ...", is not a label).
    let numbered = t.split_whitespace().next().is_some_and(|first| {
        let label = first.trim_end_matches('.');
        let parts_are_numbers = !label.is_empty()
            && label
                .split('.')
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        parts_are_numbers && (first.contains('.') || label.len() <= 2)
    }) && !t.ends_with(['.', '!', '?', ';', ':'])
        && t.split_whitespace().count() <= 12;
    capitals || decoration || numbered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_told_from_statements() {
        for label in [
            "4.2 Waktu Masuk dan Waktu Teras",
            "4. Kelayakan",
            "SYARIKAT PELITA NUSANTARA SDN. BHD.",
            "-- Akhir Dokumen --",
        ] {
            assert!(is_label(label), "{label}");
        }
        for statement in [
            "6.1 Each premises has an Emergency Response Plan and a floor warden for every floor.",
            "Pekerja layak mendapat 16 hari cuti tahunan.",
            "Gred 41 | 25 hari",
            "Waktu teras ialah 9:30 pagi hingga 4:30 petang",
            "2024 was the first year of the scheme",
        ] {
            assert!(!is_label(statement), "{statement}");
        }
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
    fn the_chunkers_rules_apply_inside_a_line() {
        let t =
            "3.1 Kelayakan: A. Rahman diluluskan oleh En. Ali; tamat.\nÉtat à 2 p.m. sahaja. Ok?";
        let s = split_sentences(t);
        let texts: Vec<&str> = s.iter().map(|x| x.text.as_str()).collect();
        // A clause number and a single initial do not end a sentence; a lowercase next word
        // after a full stop does not either; `;` does.
        assert_eq!(
            texts,
            vec![
                "3.1 Kelayakan: A. Rahman diluluskan oleh En. Ali;",
                "tamat.",
                "État à 2 p.m. sahaja.",
                "Ok?"
            ]
        );
        let chars: Vec<char> = t.chars().collect();
        for x in &s {
            let back: String = chars[x.start..x.end].iter().collect();
            assert_eq!(back, x.text);
        }
    }
}
