//! Several `tanya serve` replicas over one Qdrant server (or cluster) and one PostgreSQL
//! database (`[shared] postgres`, docs/deploy.md): the same documents, answers and people
//! on every replica, uploads through any of them, one writer at a time, and a writer
//! killed mid-ingest leaving nothing half-indexed.
//!
//! Needs `QDRANT_URL` (a Qdrant server's gRPC address) and `TANYA_TEST_POSTGRES` (an admin
//! URL, `scripts/setup_postgres.sh start`); the test command runs it when `QDRANT_URL` is
//! set (its name says `qdrant`, so `--skip qdrant` leaves it out otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What every process of the deployment is started with.
struct Deployment {
    qdrant: String,
    postgres: String,
    uploads: PathBuf,
    collection: String,
}

impl Deployment {
    fn tanya(&self, data: &Path) -> Command {
        let mut c = common::tanya(data);
        c.env("TANYA__STORE__KIND", "qdrant")
            .env("TANYA__STORE__URL", &self.qdrant)
            .env("TANYA__STORE__BM25", "qdrant")
            .env("TANYA__STORE__COLLECTION", &self.collection)
            .env("TANYA__SHARED__POSTGRES", &self.postgres)
            .env("TANYA__SHARED__UPLOADS_DIR", &self.uploads)
            .env("TANYA__SHARED__REFRESH_MS", "200")
            .env("TANYA__SHARED__LEASE_WAIT_SECS", "120");
        c
    }
}

use common::succeeded as ok;

/// One `tanya serve` replica with a data directory of its own; killed when dropped.
struct Replica {
    child: Child,
    url: String,
    key: String,
    log: PathBuf,
}

impl Replica {
    fn start(d: &Deployment, data: &Path, log: PathBuf) -> Replica {
        let out = std::fs::File::create(&log).unwrap();
        let mut child = d
            .tanya(data)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let started = Instant::now();
        let file = data.join("server.json");
        while !file.exists() {
            assert!(
                started.elapsed().as_secs() < 180 && child.try_wait().unwrap().is_none(),
                "the replica did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let info: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        Replica {
            child,
            url: info["url"].as_str().unwrap().to_string(),
            key: info["key"].as_str().unwrap().to_string(),
            log,
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// A JSON request as the command line's key (an administrator).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.key);
        let agent = Replica::agent();
        let mut resp = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
            (_, Some(b)) => agent.post(&url).header("Authorization", &auth).send_json(b),
            _ => unreachable!(),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn ask(&self, question: &str) -> Value {
        let (status, body) = self.call(
            "POST",
            "/api/ask",
            Some(json!({"question": question, "mode": "extractive"})),
        );
        assert_eq!(status, 200, "{body}\n{}", self.log());
        body
    }

    fn search(&self, query: &str) -> Vec<String> {
        let (status, body) = self.call(
            "POST",
            "/api/search",
            Some(json!({"query": query, "limit": 5})),
        );
        assert_eq!(status, 200, "{body}");
        body["passages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rel_path"].as_str().unwrap().to_string())
            .collect()
    }

    fn documents(&self) -> Vec<String> {
        let (status, body) = self.call("GET", "/api/documents", None);
        assert_eq!(status, 200, "{body}");
        body["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "indexed")
            .map(|d| d["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` holds, or fails with `what` and what `context` says then.
fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool, context: impl Fn() -> String) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed().as_secs() < secs,
            "never happened: {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Deletes the Qdrant collection a data directory's vectors are in, when dropped.
struct DropCollection(PathBuf);

impl Drop for DropCollection {
    fn drop(&mut self) {
        use tanya::index::store::qdrant::{Binding, QdrantStore};
        if let Ok(Some(binding)) = Binding::read(&self.0) {
            let config = tanya::config::StoreConfig::of(tanya::config::StoreKind::Qdrant);
            let _ = QdrantStore::delete(&config, &binding);
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn policy(i: usize, topic: &str) -> String {
    format!(
        "Policy {i} about {topic}. Reference code CODE-{i}0{i} applies to every employee.\n\n\
         Section two of policy {i} explains the {topic} procedure in detail: staff submit \
         form F-{i} to the {topic} office within {} working days.",
        i + 3
    )
}

#[test]
#[ignore = "needs a Qdrant server (QDRANT_URL) and PostgreSQL (TANYA_TEST_POSTGRES)"]
fn qdrant_replicas_share_documents_people_uploads_and_the_writer_lease() {
    common::log_to_file();
    let qdrant = std::env::var("QDRANT_URL").expect("QDRANT_URL: a Qdrant server's gRPC address");
    let admin = std::env::var("TANYA_TEST_POSTGRES")
        .expect("TANYA_TEST_POSTGRES: a PostgreSQL admin URL (scripts/setup_postgres.sh start)");
    let db = tanya::shared::ScratchDatabase::create(&admin).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment {
        qdrant,
        postgres: db.url().to_string(),
        uploads: dir.path().join("shared-uploads"),
        collection: "tanya-e2e-replicas".into(),
    };
    let docs = dir.path().join("docs");
    for (i, topic) in ["annual leave", "travel claims", "fire drills"]
        .iter()
        .enumerate()
    {
        write(&docs, &format!("policy-{i}.txt"), &policy(i, topic));
    }
    // A writer of its own (the command line, with a data directory of its own) ingests.
    let cli = dir.path().join("cli");
    let out = ok(d.tanya(&cli).arg("ingest").arg(&docs).output().unwrap());
    assert!(out.contains("3 indexed"), "{out}");
    let _collection = DropCollection(cli.join("vectors"));

    let r1 = Replica::start(&d, &dir.path().join("r1"), dir.path().join("r1.log"));
    let r2 = Replica::start(&d, &dir.path().join("r2"), dir.path().join("r2.log"));

    // The same answers with the same citations from both.
    for q in [
        "Which form do staff submit for travel claims?",
        "What is the reference code of the fire drills policy?",
        "Within how many working days is the annual leave form submitted?",
        "What is the price of a durian in Penang?",
    ] {
        let (a1, a2) = (r1.ask(q), r2.ask(q));
        assert_eq!(a1["answer"], a2["answer"], "{q}");
        assert_eq!(a1["citations"], a2["citations"], "{q}");
        assert_eq!(a1["abstained"], a2["abstained"], "{q}");
    }
    let a = r2.ask("Which form do staff submit for travel claims?");
    assert!(a["answer"].as_str().unwrap().contains("F-1"), "{a}");
    assert_eq!(a["citations"][0]["rel_path"], "policy-1.txt", "{a}");

    // People: made through the command line, signed in on one replica, known to the other.
    let mut add = d.tanya(&cli);
    add.args([
        "users",
        "add",
        "siti",
        "--role",
        "editor",
        "--password-stdin",
    ]);
    ok(common::run_with_stdin(add, "kata-laluan-siti-123\n"));
    let mut resp = Replica::agent()
        .post(format!("{}/api/session", r1.url))
        .send_json(json!({"name": "siti", "password": "kata-laluan-siti-123"}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", r1.log());
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session: Value = resp.body_mut().read_json().unwrap();
    let mut on_r2 = Replica::agent()
        .get(format!("{}/api/session", r2.url))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(on_r2.status().as_u16(), 200);
    let who: Value = on_r2.body_mut().read_json().unwrap();
    assert_eq!(who["name"], "siti");
    assert_eq!(who["csrf"], session["csrf"]);

    // An upload through one replica lands in the shared upload space, is ingested under
    // the writer lease, and is answered by the other.
    let (ct, body) = {
        let text = policy(7, "parking permits");
        let boundary = "tanya-replica-test";
        let mut b = Vec::new();
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"parking.txt\"\r\nContent-Type: text/plain\r\n\r\n{text}\r\n\
                 --{boundary}--\r\n"
            )
            .as_bytes(),
        );
        (format!("multipart/form-data; boundary={boundary}"), b)
    };
    let resp = Replica::agent()
        .post(format!("{}/api/documents", r2.url))
        .header("Authorization", &format!("Bearer {}", r2.key))
        .header("Content-Type", &ct)
        .send(&body[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{}", r2.log());
    eventually(
        "the upload indexed and seen by the other replica",
        120,
        || r1.documents().iter().any(|p| p == "parking.txt"),
        || {
            format!(
                "r1 lists {:?}; r2's log:\n{}",
                r1.call("GET", "/api/documents", None),
                r2.log()
            )
        },
    );
    assert!(d.uploads.is_dir());
    assert_eq!(
        r1.search("parking permits CODE-707")
            .first()
            .map(String::as_str),
        Some("parking.txt")
    );

    // A writer killed between its stores' writes and the acknowledgement: nothing of it
    // is searchable, the lease goes with its process, and the next writer (here the
    // check itself) cleans up what it left.
    let more = dir.path().join("more");
    write(&more, "policy-9.txt", &policy(9, "overtime meals"));
    let mut writer = d
        .tanya(&cli)
        .arg("ingest")
        .arg(&more)
        .env("TANYA_TEST_COMMIT_PAUSE_MS", "5000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pg = tanya::shared::Pg::connect(db.url()).unwrap();
    let pending = || {
        pg.with("counting intents", |c| {
            c.query_one("SELECT count(*) FROM tanya_pending", &[])
                .map(|r| r.get::<_, i64>(0))
        })
        .unwrap()
    };
    eventually(
        "the writer's intent recorded",
        120,
        || pending() > 0,
        String::new,
    );
    // Inside the pause: the chunks are in Qdrant, not acknowledged.
    std::thread::sleep(Duration::from_millis(1500));
    writer.kill().unwrap(); // SIGKILL
    writer.wait().unwrap();
    assert_eq!(pending(), 1, "the dead writer's intent stays");
    for r in [&r1, &r2] {
        assert!(
            !r.search("overtime meals CODE-909")
                .iter()
                .any(|p| p == "policy-9.txt"),
            "a half-written document is searchable"
        );
    }
    let verify = |documents: usize| {
        let verified = ok(d
            .tanya(&cli)
            .args(["documents", "--verify"])
            .output()
            .unwrap());
        assert!(
            verified.contains(&format!("{documents} documents"))
                && verified.contains(": consistent"),
            "{verified}"
        );
    };
    verify(4);
    assert_eq!(
        pending(),
        0,
        "the check cleaned up the dead writer's intent"
    );
    // The next ingest indexes it, and both replicas answer from it.
    let out = ok(d.tanya(&cli).arg("ingest").arg(&more).output().unwrap());
    assert!(out.contains("1 indexed"), "{out}");
    eventually(
        "the new document seen by both replicas",
        30,
        || {
            [&r1, &r2].iter().all(|r| {
                r.search("overtime meals CODE-909")
                    .first()
                    .is_some_and(|p| p == "policy-9.txt")
            })
        },
        || {
            format!(
                "{:?} {:?}",
                r1.search("overtime meals CODE-909"),
                r2.search("overtime meals CODE-909")
            )
        },
    );
    verify(5);
}
