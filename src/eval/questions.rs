//! `tanya eval questions`: a question set about a folder of documents, written by
//! people who never saw the answerer (tests/data/answers/: a development part, and a
//! held-out part scored only at the end of a piece of work), asked through the real
//! engine, conversations turn by turn, and scored per kind of question.
//!
//! A line of the set: `{"id", "conversation" (null or an id shared by its turns), "turn",
//! "lang", "kind" (same-language, cross-language, unanswerable, follow-up, topic-switch),
//! "question", "style", "document" (the file holding the answer, null when none does),
//! "page", "answer_contains" (strings copied from the document, any of which shows the
//! fact), "note"}`.
//!
//! An answerable question is right when Tanya answers (does not abstain), its first
//! citation is the document, and the answer contains one of the strings (ignoring case);
//! an unanswerable one is right when Tanya abstains.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::AnswerMode;
use crate::engine::{Access, Turn};
use crate::error::Result;
use crate::Engine;

/// One question of a set.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SetQuestion {
    pub id: String,
    pub conversation: Option<String>,
    pub turn: u32,
    pub lang: String,
    pub kind: String,
    pub question: String,
    #[serde(default)]
    pub style: String,
    pub document: Option<String>,
    pub page: Option<u32>,
    #[serde(default)]
    pub answer_contains: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// How one question went.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub kind: String,
    pub lang: String,
    pub right: bool,
    pub abstained: bool,
    /// The first citation's document, if any.
    pub cited: Option<String>,
    /// Whether the answer holds one of `answer_contains`.
    pub fact: bool,
    pub answer: String,
    /// The abstention signals (see [`crate::answer::Answer`]).
    pub relevance: f32,
    pub coverage: f32,
    pub missing: Vec<String>,
}

/// Right / asked for one kind of question.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub right: usize,
    pub asked: usize,
}

impl Tally {
    pub fn share(&self) -> f64 {
        if self.asked == 0 {
            0.0
        } else {
            self.right as f64 / self.asked as f64
        }
    }
}

/// A whole run: per kind, overall, false abstentions, and every outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SetScores {
    pub overall: Tally,
    pub by_kind: BTreeMap<String, Tally>,
    /// Answerable questions Tanya abstained on, over all answerable questions.
    pub false_abstention: Tally,
    pub outcomes: Vec<Outcome>,
}

/// The questions of a set in the order they are asked: stand-alone ones, and each
/// conversation's turns together, in turn order, at the place of its first turn.
pub fn units(questions: &[SetQuestion]) -> Vec<Vec<&SetQuestion>> {
    let mut order: Vec<Vec<&SetQuestion>> = Vec::new();
    let mut at: BTreeMap<&str, usize> = BTreeMap::new();
    for q in questions {
        match q.conversation.as_deref() {
            None => order.push(vec![q]),
            Some(c) => match at.get(c) {
                Some(&i) => order[i].push(q),
                None => {
                    at.insert(c, order.len());
                    order.push(vec![q]);
                }
            },
        }
    }
    for unit in &mut order {
        unit.sort_by_key(|q| q.turn);
    }
    order
}

/// Whether `answer` shows the fact: one of `contains`, ignoring case.
pub fn holds_fact(answer: &str, contains: &[String]) -> bool {
    let a = answer.to_lowercase();
    contains.iter().any(|c| a.contains(&c.to_lowercase()))
}

/// Scores one answered question.
pub fn judge(q: &SetQuestion, abstained: bool, cited: Option<&str>, answer: &str) -> Outcome {
    let fact = holds_fact(answer, &q.answer_contains);
    let right = match &q.document {
        None => abstained,
        Some(doc) => !abstained && cited == Some(doc.as_str()) && fact,
    };
    Outcome {
        id: q.id.clone(),
        kind: q.kind.clone(),
        lang: q.lang.clone(),
        right,
        abstained,
        cited: cited.map(str::to_string),
        fact,
        answer: answer.to_string(),
        relevance: 0.0,
        coverage: 0.0,
        missing: Vec::new(),
    }
}

/// Asks every question of `set` (conversations turn by turn) and scores the answers.
pub fn evaluate(
    engine: &Engine,
    set: &[SetQuestion],
    access: &Access,
    mode: AnswerMode,
) -> Result<SetScores> {
    let mut outcomes = Vec::with_capacity(set.len());
    for unit in units(set) {
        let mut history: Vec<Turn> = Vec::new();
        for q in unit {
            let answer = engine.ask_follow_up(
                &q.question,
                &history,
                access,
                mode,
                Arc::new(AtomicBool::new(false)),
                &mut |_| {},
            )?;
            let cited = answer.citations.first().map(|c| file_name(&c.rel_path));
            let mut outcome = judge(q, answer.abstained, cited, &answer.text);
            outcome.relevance = answer.relevance;
            outcome.coverage = answer.coverage;
            let query = crate::engine::follow_up_query(&q.question, &history);
            outcome.missing = engine.missing_words(&query, &answer.passages);
            outcomes.push(outcome);
            history.push(Turn {
                question: q.question.clone(),
                answer: answer.text,
            });
        }
    }
    Ok(tally(outcomes, set))
}

fn file_name(rel_path: &str) -> &str {
    Path::new(rel_path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(rel_path)
}

fn tally(outcomes: Vec<Outcome>, set: &[SetQuestion]) -> SetScores {
    let answerable: std::collections::HashSet<&str> = set
        .iter()
        .filter(|q| q.document.is_some())
        .map(|q| q.id.as_str())
        .collect();
    let mut overall = Tally::default();
    let mut by_kind: BTreeMap<String, Tally> = BTreeMap::new();
    let mut false_abstention = Tally::default();
    for o in &outcomes {
        for t in [&mut overall, by_kind.entry(o.kind.clone()).or_default()] {
            t.asked += 1;
            t.right += usize::from(o.right);
        }
        if answerable.contains(o.id.as_str()) {
            false_abstention.asked += 1;
            false_abstention.right += usize::from(o.abstained);
        }
    }
    SetScores {
        overall,
        by_kind,
        false_abstention,
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, conversation: Option<&str>, turn: u32, document: Option<&str>) -> SetQuestion {
        SetQuestion {
            id: id.into(),
            conversation: conversation.map(str::to_string),
            turn,
            lang: "ms".into(),
            kind: if document.is_some() {
                "same-language"
            } else {
                "unanswerable"
            }
            .into(),
            question: format!("soalan {id}"),
            style: "formal".into(),
            document: document.map(str::to_string),
            page: None,
            answer_contains: vec!["16 hari".into()],
            note: String::new(),
        }
    }

    #[test]
    fn conversations_are_asked_together_in_turn_order() {
        let set = vec![
            q("a", None, 1, Some("x.pdf")),
            q("c2", Some("c"), 2, Some("x.pdf")),
            q("b", None, 1, Some("x.pdf")),
            q("c1", Some("c"), 1, Some("x.pdf")),
        ];
        let ids: Vec<Vec<&str>> = units(&set)
            .iter()
            .map(|u| u.iter().map(|q| q.id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["a"], vec!["c1", "c2"], vec!["b"]]);
    }

    #[test]
    fn right_means_the_document_first_and_the_fact_or_an_abstention() {
        let answerable = q("a", None, 1, Some("cuti.pdf"));
        assert!(judge(&answerable, false, Some("cuti.pdf"), "… 16 HARI …").right);
        assert!(!judge(&answerable, false, Some("lain.pdf"), "16 hari").right);
        assert!(!judge(&answerable, false, Some("cuti.pdf"), "14 hari").right);
        assert!(!judge(&answerable, true, None, "Dokumen tidak menyatakan").right);
        let unanswerable = q("u", None, 1, None);
        assert!(judge(&unanswerable, true, None, "Dokumen tidak menyatakan").right);
        assert!(!judge(&unanswerable, false, Some("cuti.pdf"), "16 hari").right);
        let scores = tally(
            vec![
                judge(&answerable, true, None, ""),
                judge(&unanswerable, true, None, ""),
            ],
            &[answerable.clone(), unanswerable.clone()],
        );
        assert_eq!((scores.overall.right, scores.overall.asked), (1, 2));
        assert_eq!(
            (scores.false_abstention.right, scores.false_abstention.asked),
            (1, 1)
        );
        assert_eq!(scores.by_kind["unanswerable"].right, 1);
    }
}
