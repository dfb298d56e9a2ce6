//! Conversations kept in memory so that follow-up questions have context. Bounded in
//! number and age: the oldest is forgotten first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::Turn;

/// Conversations kept at most.
pub const MAX_CONVERSATIONS: usize = 200;
/// Turns kept per conversation (only the last ones matter for follow-ups).
const MAX_TURNS: usize = 8;
/// A conversation idle this long is forgotten.
const IDLE: Duration = Duration::from_secs(3600);

struct Conversation {
    turns: Vec<Turn>,
    used: Instant,
}

#[derive(Default)]
pub struct Conversations {
    inner: Mutex<HashMap<String, Conversation>>,
}

impl Conversations {
    /// The turns of `id` so far, or a new conversation (with a new id) when `id` is
    /// unknown, expired or absent.
    pub fn resume(&self, id: Option<&str>) -> (String, Vec<Turn>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, c| now.duration_since(c.used) < IDLE);
        if let Some(c) = id.and_then(|id| map.get_mut(id)) {
            c.used = now;
            return (id.unwrap_or_default().to_string(), c.turns.clone());
        }
        (uuid::Uuid::new_v4().to_string(), Vec::new())
    }

    /// Records a finished turn.
    pub fn record(&self, id: &str, turn: Turn) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(id) && map.len() >= MAX_CONVERSATIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let c = map.entry(id.to_string()).or_insert_with(|| Conversation {
            turns: Vec::new(),
            used: Instant::now(),
        });
        c.used = Instant::now();
        c.turns.push(turn);
        if c.turns.len() > MAX_TURNS {
            c.turns.remove(0);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(q: &str) -> Turn {
        Turn {
            question: q.into(),
            answer: "a".into(),
        }
    }

    #[test]
    fn unknown_ids_start_a_new_conversation() {
        let c = Conversations::default();
        let (id, turns) = c.resume(Some("nope"));
        assert_ne!(id, "nope");
        assert!(turns.is_empty());
        c.record(&id, turn("q1"));
        let (again, turns) = c.resume(Some(&id));
        assert_eq!(again, id);
        assert_eq!(turns, vec![turn("q1")]);
    }

    #[test]
    fn bounded_in_number_and_length() {
        let c = Conversations::default();
        for i in 0..MAX_CONVERSATIONS + 5 {
            c.record(&format!("c{i}"), turn("q"));
        }
        assert_eq!(c.len(), MAX_CONVERSATIONS);
        for i in 0..MAX_TURNS + 3 {
            c.record("long", turn(&format!("q{i}")));
        }
        let (_, turns) = c.resume(Some("long"));
        assert_eq!(turns.len(), MAX_TURNS);
        assert_eq!(
            turns.last().unwrap().question,
            format!("q{}", MAX_TURNS + 2)
        );
    }
}
