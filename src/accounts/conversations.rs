//! Saved conversations: each belongs to one user, who alone can list, reopen, rename,
//! delete or continue it. A turn keeps the question, the answer text and the whole
//! response as the server sent it (JSON, opaque here), so the page can show it again.

use super::db::Row;
use super::{now, Accounts};
use crate::error::{Error, Result};

/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Conversations listed at most (the most recent first).
pub const MAX_LISTED: usize = 500;

/// A conversation as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConversationInfo {
    pub id: String,
    pub title: String,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub turns: i64,
}

/// One question and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTurn {
    pub question: String,
    pub answer: String,
    /// The response as the server sent it (JSON).
    pub response: String,
    pub created_at: i64,
}

/// The columns of a [`ConversationInfo`], for [`info_of`].
const INFO: &str = "SELECT c.id, c.title, c.created_at, c.updated_at,
        (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id)
     FROM conversations c";

fn info_of(r: &Row) -> Result<ConversationInfo> {
    Ok(ConversationInfo {
        id: r.get(0)?,
        title: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        turns: r.get(4)?,
    })
}

/// A title from a question: its first line, at most [`MAX_TITLE_CHARS`] characters.
fn title_of(question: &str) -> String {
    let line = question.lines().next().unwrap_or("").trim();
    let mut t: String = line.chars().take(MAX_TITLE_CHARS).collect();
    if line.chars().count() > MAX_TITLE_CHARS {
        t.push('…');
    }
    t
}

fn check_title(title: &str) -> Result<String> {
    let t = title.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "a conversation's title is 1 to {MAX_TITLE_CHARS} characters, without control \
             characters"
        )));
    }
    Ok(t.to_string())
}

impl Accounts {
    /// Adds a turn to `user_id`'s conversation `id`, starting it (titled by its first
    /// question) if it is new. A conversation of someone else is never touched: that is an
    /// error.
    pub fn add_turn(
        &self,
        user_id: i64,
        id: &str,
        question: &str,
        answer: &str,
        response: &str,
    ) -> Result<()> {
        let t = now();
        let title = title_of(question);
        self.write(|db| {
            let owner = db.one::<i64>(
                "looking up a conversation",
                "SELECT user_id FROM conversations WHERE id = $1",
                &[id.into()],
            )?;
            match owner {
                Some(o) if o != user_id => {
                    return Err(Error::BadRequest(format!("no conversation `{id}`")));
                }
                Some(_) => {
                    db.exec(
                        "updating a conversation",
                        "UPDATE conversations SET updated_at = $1 WHERE id = $2",
                        &[t.into(), id.into()],
                    )?;
                }
                None => {
                    db.exec(
                        "starting a conversation",
                        "INSERT INTO conversations (id, user_id, title, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $4)",
                        &[id.into(), user_id.into(), title.as_str().into(), t.into()],
                    )?;
                }
            }
            db.exec(
                "saving a turn",
                "INSERT INTO turns (conversation_id, n, question, answer, response, created_at)
                 VALUES ($1, (SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation_id = $1),
                         $2, $3, $4, $5)",
                &[
                    id.into(),
                    question.into(),
                    answer.into(),
                    response.into(),
                    t.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// How many conversations are saved, everyone's together (a metric).
    pub fn conversation_count(&self) -> Result<usize> {
        self.run(|db| {
            db.one::<i64>(
                "counting conversations",
                "SELECT COUNT(*) FROM conversations",
                &[],
            )
        })
        .map(|n| n.unwrap_or(0) as usize)
    }

    /// `user_id`'s conversations, the most recently used first.
    pub fn conversations(&self, user_id: i64) -> Result<Vec<ConversationInfo>> {
        self.conversations_where(
            "c.user_id = $1 ORDER BY c.updated_at DESC, c.rowid DESC LIMIT $2",
            user_id,
            MAX_LISTED as i64,
        )
    }

    /// `user_id`'s conversation `id` with its turns in order; `None` when it is not
    /// theirs (or does not exist).
    pub fn conversation(
        &self,
        user_id: i64,
        id: &str,
    ) -> Result<Option<(ConversationInfo, Vec<StoredTurn>)>> {
        let Some(info) = self
            .conversations_where("c.user_id = $1 AND c.id = $2", user_id, id)?
            .pop()
        else {
            return Ok(None);
        };
        let rows = self.run(|db| {
            db.rows(
                "reading a conversation",
                "SELECT question, answer, response, created_at FROM turns
                 WHERE conversation_id = $1 ORDER BY n",
                &[id.into()],
            )
        })?;
        let turns = rows
            .iter()
            .map(|r| {
                Ok(StoredTurn {
                    question: r.get(0)?,
                    answer: r.get(1)?,
                    response: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((info, turns)))
    }

    /// The conversations `tail` (a condition over `$1`, a user's id, and `$2`, then any
    /// order and limit) selects.
    fn conversations_where<'a>(
        &self,
        tail: &str,
        user_id: i64,
        second: impl Into<super::db::Arg<'a>>,
    ) -> Result<Vec<ConversationInfo>> {
        let second = second.into();
        let rows = self.run(|db| {
            db.rows(
                "reading conversations",
                &format!("{INFO} WHERE {tail}"),
                &[user_id.into(), second],
            )
        })?;
        rows.iter().map(info_of).collect()
    }

    /// Renames `user_id`'s conversation `id`; `false` when it is not theirs.
    pub fn rename_conversation(&self, user_id: i64, id: &str, title: &str) -> Result<bool> {
        let title = check_title(title)?;
        let n = self.run(|db| {
            db.exec(
                "renaming a conversation",
                "UPDATE conversations SET title = $1 WHERE id = $2 AND user_id = $3",
                &[title.as_str().into(), id.into(), user_id.into()],
            )
        })?;
        Ok(n > 0)
    }

    /// Deletes `user_id`'s conversation `id` and its turns; `false` when it is not theirs.
    pub fn delete_conversation(&self, user_id: i64, id: &str) -> Result<bool> {
        let n = self.run(|db| {
            db.exec(
                "deleting a conversation",
                "DELETE FROM conversations WHERE id = $1 AND user_id = $2",
                &[id.into(), user_id.into()],
            )
        })?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{needs_postgres, Fixture};
    use super::super::Role;
    use super::*;

    #[test]
    fn conversations_are_their_owners_alone() {
        owners_alone(&Fixture::sqlite());
    }

    #[test]
    #[ignore = needs_postgres!()]
    fn postgres_conversations_are_their_owners_alone() {
        owners_alone(&Fixture::postgres());
    }

    fn owners_alone(f: &Fixture) {
        let a = f.open();
        let siti = a
            .add_user("siti", "kata-laluan-siti", Role::Reader, &[])
            .unwrap();
        let ali = a
            .add_user("ali", "kata-laluan-ali1", Role::Reader, &[])
            .unwrap();
        a.add_turn(siti.id, "c1", "Berapa hari cuti?\nlagi", "14 hari", "{}")
            .unwrap();
        a.add_turn(siti.id, "c1", "Kalau sakit?", "22 hari", "{\"x\":1}")
            .unwrap();
        // Ali can neither add to it, nor see, rename or delete it.
        assert!(a.add_turn(ali.id, "c1", "q", "a", "{}").is_err());
        assert!(a.conversations(ali.id).unwrap().is_empty());
        assert_eq!(a.conversation(ali.id, "c1").unwrap(), None);
        assert!(!a.rename_conversation(ali.id, "c1", "mine").unwrap());
        assert!(!a.delete_conversation(ali.id, "c1").unwrap());

        let listed = a.conversations(siti.id).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].title, "Berapa hari cuti?");
        assert_eq!(listed[0].turns, 2);
        let (_, turns) = a.conversation(siti.id, "c1").unwrap().unwrap();
        assert_eq!(
            turns.iter().map(|t| t.answer.as_str()).collect::<Vec<_>>(),
            ["14 hari", "22 hari"]
        );
        assert_eq!(turns[1].response, "{\"x\":1}");
        assert!(a.rename_conversation(siti.id, "c1", "  Cuti  ").unwrap());
        assert_eq!(a.conversations(siti.id).unwrap()[0].title, "Cuti");
        assert!(a.rename_conversation(siti.id, "c1", "a\u{7}b").is_err());
        assert!(a.rename_conversation(siti.id, "c1", " ").is_err());

        // Reopened, it is still there; deleted, it is gone with its turns.
        drop(a);
        let a = f.open();
        assert_eq!(a.conversations(siti.id).unwrap().len(), 1);
        assert!(a.delete_conversation(siti.id, "c1").unwrap());
        assert_eq!(a.conversation(siti.id, "c1").unwrap(), None);
        // A user's removal takes their conversations with them.
        a.add_turn(ali.id, "c2", "q", "a", "{}").unwrap();
        a.remove_user("ali").unwrap();
        assert_eq!(a.conversation(ali.id, "c2").unwrap(), None);
    }

    #[test]
    fn long_first_questions_make_short_titles() {
        let long = "x".repeat(300);
        let t = title_of(&long);
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(t.ends_with('…'));
    }
}
