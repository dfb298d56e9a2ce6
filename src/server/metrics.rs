//! Prometheus metrics in the text exposition format, kept by hand: a few counters and
//! one latency histogram per route need no framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    ingest: BTreeMap<String, u64>,
    ingest_chunks: u64,
    answers: BTreeMap<(String, bool), u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Values read at scrape time.
pub struct Gauges {
    pub queue_depth: usize,
    pub documents: usize,
    pub conversations: usize,
    pub answering: usize,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut m = self.lock();
        *m.requests
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let h = m.latency.entry(route.to_string()).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
    }

    /// One file's ingest outcome (`indexed`, `rejected`, `unchanged`).
    pub fn ingested(&self, outcome: &str, chunks: usize) {
        let mut m = self.lock();
        *m.ingest.entry(outcome.to_string()).or_default() += 1;
        m.ingest_chunks += chunks as u64;
    }

    pub fn answered(&self, mode: &str, abstained: bool) {
        *self
            .lock()
            .answers
            .entry((mode.to_string(), abstained))
            .or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let m = self.lock();
        let mut out = String::new();
        let w = &mut out;
        m.write_requests(w);
        m.write_latency(w);
        m.write_ingest(w);
        m.write_answers(w);
        m.write_singles(w, gauges);
        out
    }
}

/// The families of [`Metrics::render`], in the order it writes them.
impl Inner {
    /// HTTP requests by route, method and status.
    fn write_requests(&self, w: &mut String) {
        family(
            w,
            "tanya_http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        for ((route, method, status), n) in &self.requests {
            let _ = writeln!(
                w,
                "tanya_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
    }

    /// The request latency histogram of each route.
    fn write_latency(&self, w: &mut String) {
        family(
            w,
            "tanya_http_request_duration_seconds",
            "histogram",
            "Time to the response head, by route.",
        );
        for (route, h) in &self.latency {
            let route = escape(route);
            let name = "tanya_http_request_duration_seconds";
            for (b, n) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(w, "{name}_bucket{{route=\"{route}\",le=\"{b}\"}} {n}");
            }
            let _ = writeln!(
                w,
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(w, "{name}_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(w, "{name}_count{{route=\"{route}\"}} {}", h.count);
        }
    }

    /// Files ingested, by outcome.
    fn write_ingest(&self, w: &mut String) {
        family(
            w,
            "tanya_ingest_files_total",
            "counter",
            "Files ingested through the server, by outcome.",
        );
        for outcome in ["indexed", "rejected", "unchanged"] {
            let n = self.ingest.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(w, "tanya_ingest_files_total{{outcome=\"{outcome}\"}} {n}");
        }
    }

    /// Answers given, by mode and abstention.
    fn write_answers(&self, w: &mut String) {
        family(
            w,
            "tanya_answers_total",
            "counter",
            "Answers given, by mode and whether Tanya abstained.",
        );
        for ((mode, abstained), n) in &self.answers {
            let _ = writeln!(
                w,
                "tanya_answers_total{{mode=\"{mode}\",abstained=\"{abstained}\"}} {n}"
            );
        }
    }

    /// The single-value counters and the gauges read at scrape time.
    fn write_singles(&self, w: &mut String, gauges: &Gauges) {
        let singles: [(&str, &str, &str, u64); 5] = [
            (
                "tanya_ingest_chunks_total",
                "counter",
                "Chunks embedded and stored by the server.",
                self.ingest_chunks,
            ),
            (
                "tanya_ingest_queue_depth",
                "gauge",
                "Uploads waiting to be ingested.",
                gauges.queue_depth as u64,
            ),
            (
                "tanya_documents",
                "gauge",
                "Acknowledged (searchable) documents the server's groups may see.",
                gauges.documents as u64,
            ),
            (
                "tanya_conversations",
                "gauge",
                "Conversations held in memory.",
                gauges.conversations as u64,
            ),
            (
                "tanya_answers_in_flight",
                "gauge",
                "Answers being worked on.",
                gauges.answering as u64,
            ),
        ];
        for (name, kind, help, value) in singles {
            family(w, name, kind, help);
            let _ = writeln!(w, "{name} {value}");
        }
    }
}

/// The HELP and TYPE lines of a metric family.
fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.request("/api/ask", "POST", 200, Duration::from_millis(20));
        m.request("/api/ask", "POST", 200, Duration::from_secs(3));
        let text = m.render(&Gauges {
            queue_depth: 2,
            documents: 5,
            conversations: 1,
            answering: 0,
        });
        assert!(text.contains(
            "tanya_http_requests_total{route=\"/api/ask\",method=\"POST\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"/api/ask\",le=\"0.025\"} 1"));
        assert!(text.contains("route=\"/api/ask\",le=\"5\"} 2"));
        assert!(text.contains("route=\"/api/ask\",le=\"+Inf\"} 2"));
        assert!(text.contains("tanya_ingest_queue_depth 2"));
    }
}
