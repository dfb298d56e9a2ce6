//! A question's words in the other language, for BM25: an English–Malay word list
//! (`scripts/build_lexicon.py` builds it offline from Debian's FreeDict English–Indonesian
//! dictionary and Apertium's Indonesian–Malay pair; a user may add lists of their own).
//!
//! Lookup is on analysed words (stopwords gone, stemmed by the language's analyser), so
//! "pekerja", "pekerjaan" and "bekerja" find what their stem finds, and the longest
//! phrase wins ("annual leave" before "annual" and "leave"). A word the list does not
//! know is kept as it is: names, numbers and loanwords ("Labuan", "2000", "bas") are
//! spelled alike in both languages.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::text::analysis::{analyze, analyze_words, Analyzer};

/// Tanya's own glossary of administrative and legal words (`config/glossary-en-ms.tsv`),
/// named `builtin` in `[search] lexicons`.
pub const GLOSSARY: &str = include_str!("../../config/glossary-en-ms.tsv");

/// The name that stands for [`GLOSSARY`] in a list of lexicon files.
pub const BUILTIN: &str = "builtin";

/// Most alternatives kept for one word or phrase, in the list's order (a dictionary
/// lists a word's commonest translations first).
const MAX_ALTERNATIVES: usize = 5;

/// Longest phrase looked up, in analysed words.
const MAX_PHRASE: usize = 3;

/// Translations both ways, keyed by analysed words joined by one space.
#[derive(Debug, Default)]
pub struct Lexicon {
    en_ms: HashMap<String, Vec<Vec<String>>>,
    ms_en: HashMap<String, Vec<Vec<String>>>,
    files: Vec<PathBuf>,
}

/// One word or phrase of the question and the ways the other language may say it, each
/// as analysed words that must all occur.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub source: String,
    pub alternatives: Vec<Vec<String>>,
}

/// A question carried into the other language: its slots, analysed with `to`.
#[derive(Debug, Clone)]
pub struct Translation {
    pub to: Analyzer,
    pub slots: Vec<Slot>,
}

impl Lexicon {
    /// Reads each file of `english<TAB>malay` lines (`#` comments and blank lines
    /// skipped), in order: the first file's alternatives come first. A file named
    /// [`BUILTIN`] is the built-in [`GLOSSARY`].
    pub fn load(files: &[PathBuf]) -> Result<Self> {
        let mut lexicon = Lexicon::default();
        for file in files {
            if file.as_os_str() == BUILTIN {
                lexicon.add_lines(GLOSSARY, Path::new("config/glossary-en-ms.tsv"))?;
                lexicon.files.push(file.clone());
                continue;
            }
            if !file.is_file() {
                return Err(Error::ModelMissing { path: file.clone() });
            }
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            lexicon.add_lines(&text, file)?;
            lexicon.files.push(file.clone());
        }
        Ok(lexicon)
    }

    /// A lexicon from `english<TAB>malay` lines (for tests and user lists).
    pub fn from_lines(text: &str) -> Result<Self> {
        let mut lexicon = Lexicon::default();
        lexicon.add_lines(text, Path::new("(inline)"))?;
        Ok(lexicon)
    }

    fn add_lines(&mut self, text: &str, file: &Path) -> Result<()> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((en, ms)) = line.split_once('\t') else {
                return Err(Error::Config(format!(
                    "{} line {}: expected `english<TAB>malay`",
                    file.display(),
                    n + 1
                )));
            };
            let en = analyze(en, Analyzer::English);
            let ms = analyze(ms, Analyzer::Malay);
            if en.is_empty() || ms.is_empty() || en.len() > MAX_PHRASE || ms.len() > MAX_PHRASE {
                continue;
            }
            add(&mut self.en_ms, en.join(" "), ms.clone());
            add(&mut self.ms_en, ms.join(" "), en);
        }
        Ok(())
    }

    /// Whether the lexicon knows no word.
    pub fn is_empty(&self) -> bool {
        self.en_ms.is_empty()
    }

    /// The files it was read from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// `question`, written in `from`'s language, as slots in the other language.
    pub fn translate(&self, question: &str, from: Analyzer) -> Translation {
        let (to, map) = match from {
            Analyzer::English => (Analyzer::Malay, &self.en_ms),
            Analyzer::Malay => (Analyzer::English, &self.ms_en),
        };
        let words = analyze_words(question, from);
        let mut slots: Vec<Slot> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let found = (1..=MAX_PHRASE.min(words.len() - i)).rev().find_map(|n| {
                let key = words[i..i + n]
                    .iter()
                    .map(|(_, stem)| stem.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                map.get(&key).map(|alts| (n, alts))
            });
            let source = |n: usize| {
                words[i..i + n]
                    .iter()
                    .map(|(raw, _)| raw.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            match found {
                Some((n, alts)) => {
                    slots.push(Slot {
                        source: source(n),
                        alternatives: alts.clone(),
                    });
                    i += n;
                }
                None => {
                    // Kept as it is, analysed as the other language would.
                    let same = analyze(&words[i].0, to);
                    if !same.is_empty() {
                        slots.push(Slot {
                            source: source(1),
                            alternatives: vec![same],
                        });
                    }
                    i += 1;
                }
            }
        }
        Translation { to, slots }
    }
}

fn add(map: &mut HashMap<String, Vec<Vec<String>>>, key: String, alternative: Vec<String>) {
    let alts = map.entry(key).or_default();
    if alts.len() < MAX_ALTERNATIVES && !alts.contains(&alternative) {
        alts.push(alternative);
    }
}

impl Translation {
    /// Whether the question had no word to carry (all stopwords).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Share of the slots that `text` says in some way: one of the slot's alternatives
    /// occurs in it, a phrase as a phrase ("cuti tahunan", annual leave, is not said by
    /// a sentence on "cuti sakit" for 2 "tahun": stemmed, both are `cuti` … `tahun`).
    pub fn coverage(&self, text: &str) -> f32 {
        self.coverage_of(&analyze(text, self.to))
    }

    /// [`Self::coverage`] of a text already analysed with `self.to`.
    pub fn coverage_of(&self, analysed: &[String]) -> f32 {
        if self.slots.is_empty() {
            return 0.0;
        }
        let words: HashSet<&str> = analysed.iter().map(String::as_str).collect();
        let says = |a: &Vec<String>| match a.as_slice() {
            [w] => words.contains(w.as_str()),
            phrase => analysed.windows(phrase.len()).any(|w| w == phrase),
        };
        let covered = self
            .slots
            .iter()
            .filter(|s| s.alternatives.iter().any(says))
            .count();
        covered as f32 / self.slots.len() as f32
    }

    /// The translation as plain text, each slot's first alternative (for display and
    /// for embedding).
    pub fn first_words(&self) -> String {
        self.slots
            .iter()
            .filter_map(|s| s.alternatives.first())
            .map(|a| a.join(" "))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "# test list\n\
        leave\tcuti\n\
        leave\tizin\n\
        annual\ttahunan\n\
        annual leave\tcuti tahunan\n\
        employee\tpekerja\n\
        employee\tpegawai\n\
        office\tpejabat\n";

    #[test]
    fn longest_phrase_first_and_unknown_words_kept() {
        let l = Lexicon::from_lines(LIST).unwrap();
        let t = l.translate(
            "How many days of annual leave does an employee in Labuan get?",
            Analyzer::English,
        );
        assert_eq!(t.to, Analyzer::Malay);
        let sources: Vec<&str> = t.slots.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(
            sources,
            ["many", "days", "annual leave", "employee", "labuan", "get"]
        );
        assert_eq!(t.slots[2].alternatives, vec![vec!["cuti", "tahun"]]);
        assert_eq!(t.slots[3].alternatives.len(), 2);
        // Malay to English, through the stem: "pekerja-pekerja", "pejabat".
        let back = l.translate("Cuti tahunan pekerja di pejabat", Analyzer::Malay);
        assert_eq!(back.to, Analyzer::English);
        assert_eq!(
            back.slots
                .iter()
                .map(|s| s.alternatives[0].join(" "))
                .collect::<Vec<_>>(),
            ["annual leav", "employe", "offic"]
        );
    }

    #[test]
    fn coverage_counts_slots_said_in_any_way() {
        let l = Lexicon::from_lines(LIST).unwrap();
        let t = l.translate("annual leave for an employee", Analyzer::English);
        assert_eq!(
            t.coverage("Setiap pegawai layak 14 hari cuti tahunan."),
            1.0
        );
        assert_eq!(t.coverage("Setiap pegawai layak cuti sakit."), 0.5);
        assert_eq!(t.coverage("Tiada kaitan."), 0.0);
    }

    #[test]
    fn the_glossary_loads_and_carries_policy_words() {
        let l = Lexicon::load(&[PathBuf::from(BUILTIN)]).unwrap();
        let t = l.translate(
            "Who approves purchases above RM1 million?",
            Analyzer::English,
        );
        let first: Vec<String> = t
            .slots
            .iter()
            .map(|s| s.alternatives[0].join(" "))
            .collect();
        assert!(first.contains(&"beli".to_string()), "{first:?}");
        let t = l.translate(
            "Rang Undang-Undang Perbekalan Tambahan 2004",
            Analyzer::Malay,
        );
        assert_eq!(t.coverage("Supplementary Supply Bill 2004"), 1.0, "{t:?}");
    }

    #[test]
    fn the_config_names_the_glossary_as_this_module_does() {
        assert_eq!(BUILTIN, crate::config::BUILTIN_LEXICON);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Lexicon::from_lines("leave cuti\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
