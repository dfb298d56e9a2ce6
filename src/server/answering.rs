//! Running an answer for the HTTP layer: on its own thread, with its events sent over a
//! channel, cancelled when the client goes away; and the server-sent-event stream that
//! carries those events to the client with keep-alives while the model thinks.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::AppState;
use crate::config::AnswerMode;
use crate::engine::SearchHit;
use crate::engine::{Access, Turn};
use crate::engine::{Answer, AnswerEvent};

/// What an answer run reports, in order: passages, tokens (generative only), then exactly
/// one of `Finished` or `Failed`.
pub enum Out {
    Passages(Vec<SearchHit>),
    Token(String),
    Finished(Box<Answer>),
    Failed(ApiError),
}

/// Sets the flag when dropped: a request handler or response stream that goes away
/// (the client disconnected) cancels the generation it started.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Counts a running answer thread for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A validated question, ready to run.
pub struct Job {
    pub question: String,
    pub history: Vec<Turn>,
    pub mode: AnswerMode,
    /// What the asker may see: built from their principal, never from the request.
    pub access: Access,
}

impl Job {
    /// Checks the question and the mode before anything is streamed, so that the caller's
    /// mistakes get a proper status code.
    pub fn new(
        state: &AppState,
        access: Access,
        question: &str,
        history: Vec<Turn>,
        mode: Option<AnswerMode>,
    ) -> Result<Job, ApiError> {
        let question = crate::engine::check_query(question)?.to_string();
        let max = state.engine.config().server.max_answering;
        if state.answering.load(Ordering::SeqCst) >= max {
            return Err(ApiError::too_many(
                "busy",
                format!("{max} answers are being worked on already: try again in a moment"),
                5,
            ));
        }
        let mode = mode.unwrap_or(state.engine.config().answer.mode);
        if mode == AnswerMode::Generative && !state.engine.config().generative_available() {
            return Err(crate::Error::ModelMissing {
                path: state.engine.config().gguf_path(),
            }
            .into());
        }
        Ok(Job {
            question,
            history,
            mode,
            access,
        })
    }
}

/// Starts answering on a new thread. Dropping the receiver, or setting the returned
/// flag, stops a generation within a token.
pub fn spawn(state: &AppState, job: Job) -> (mpsc::Receiver<Out>, Arc<AtomicBool>) {
    let (tx, rx) = mpsc::channel::<Out>(256);
    let cancel = Arc::new(AtomicBool::new(false));
    let engine = Arc::clone(&state.engine);
    let flag = Arc::clone(&cancel);
    let in_flight = InFlight::enter(Arc::clone(&state.answering));
    let spawned = std::thread::Builder::new()
        .name("tanya-answer".into())
        .spawn(move || {
            let _in_flight = in_flight;
            let mut on_event = |event: AnswerEvent| {
                let out = match event {
                    AnswerEvent::Passages(hits) => Out::Passages(hits),
                    AnswerEvent::Token(t) => Out::Token(t),
                };
                if tx.blocking_send(out).is_err() {
                    flag.store(true, Ordering::SeqCst); // nobody is listening any more
                }
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.ask_follow_up(
                    &job.question,
                    &job.history,
                    &job.access,
                    job.mode,
                    Arc::clone(&flag),
                    &mut on_event,
                )
            }));
            let last = match result {
                Ok(Ok(answer)) => Out::Finished(Box::new(answer)),
                Ok(Err(e)) => Out::Failed(e.into()),
                Err(_) => Out::Failed(ApiError::internal("answering failed unexpectedly")),
            };
            let _ = tx.blocking_send(last);
        });
    if let Err(e) = spawned {
        let (tx, rx) = mpsc::channel::<Out>(1);
        let _ = tx.try_send(Out::Failed(ApiError::internal(format!(
            "starting an answer thread: {e}"
        ))));
        return (rx, cancel);
    }
    (rx, cancel)
}

/// Waits for the end of a run, ignoring the intermediate events.
pub async fn finish(mut rx: mpsc::Receiver<Out>) -> Result<Answer, ApiError> {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Finished(a) => return Ok(*a),
            Out::Failed(e) => return Err(e),
            Out::Passages(_) | Out::Token(_) => {}
        }
    }
    Err(ApiError::internal(
        "the answer thread stopped without an answer",
    ))
}

/// One server-sent event.
pub fn sse_event(name: &str, data: &impl serde::Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// An unnamed server-sent event (the OpenAI streaming format).
pub fn sse_data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// The response body of a streamed answer: each [`Out`] turned into SSE frames by
/// `format`, a keep-alive comment every second while nothing else is sent, and a cancel
/// of the generation when the body is dropped (the client went away).
pub struct SseStream<F> {
    rx: mpsc::Receiver<Out>,
    format: F,
    pending: VecDeque<Bytes>,
    tick: tokio::time::Interval,
    done: bool,
    _cancel: CancelOnDrop,
}

impl<F> SseStream<F>
where
    F: FnMut(Out) -> Vec<Bytes> + Unpin,
{
    pub fn new(rx: mpsc::Receiver<Out>, cancel: Arc<AtomicBool>, format: F) -> Self {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        SseStream {
            rx,
            format,
            pending: VecDeque::new(),
            tick,
            done: false,
            _cancel: CancelOnDrop(cancel),
        }
    }
}

impl<F> Stream for SseStream<F>
where
    F: FnMut(Out) -> Vec<Bytes> + Unpin,
{
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(b) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(b)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(out)) => {
                    if matches!(out, Out::Finished(_) | Out::Failed(_)) {
                        this.done = true;
                    }
                    let frames = (this.format)(out);
                    this.pending.extend(frames);
                    continue;
                }
                Poll::Ready(None) => {
                    this.done = true;
                    continue;
                }
                Poll::Pending => {}
            }
            return match this.tick.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n")))),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// Splits a finished extractive answer into the pieces streamed as tokens: the lead-in
/// and then one piece per quoted sentence with its marker.
pub fn answer_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let boundary = (c == ']' && chars.peek() == Some(&' '))
            || (c == ':' && chars.peek() == Some(&' ') && pieces.is_empty());
        if boundary {
            current.push(chars.next().unwrap_or(' '));
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_answer() {
        let text = "Menurut dokumen: “A b.” [1] “C d.” [2]";
        let pieces = answer_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert_eq!(pieces[0], "Menurut dokumen: ");
        assert_eq!(answer_pieces("The documents do not say.").len(), 1);
    }
}
