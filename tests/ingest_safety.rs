//! Ingestion that never crashes, never hangs and never half-indexes: parsers that
//! panic, loop, exhaust memory or overflow their stack cost only their file; a process
//! killed at random moments leaves an index where every acknowledged document is whole
//! and findable, and nothing else.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tanya::ingest::isolate::FAULT_ENV;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn report(path: &Path) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v[0].clone()
}

#[test]
fn a_misbehaving_parser_costs_only_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    write(
        &docs,
        "good.txt",
        "Cuti tahunan ialah 16 hari bagi pekerja yang berkhidmat tiga tahun.",
    );
    write(
        &docs,
        "bad.txt",
        "This file's parser will misbehave on purpose in this test.",
    );
    for (fault, reason) in [
        ("panic", "crashed"),
        ("stack", "crashed"),
        ("oom", "memory_limit"),
        ("loop", "timeout"),
    ] {
        let data = dir.path().join(format!("data-{fault}"));
        let report_file = dir.path().join(format!("{fault}.json"));
        let started = Instant::now();
        let out = common::tanya(&data)
            .env(FAULT_ENV, format!("{fault}@bad.txt"))
            // Only the endless loop should meet the time limit, also on a busy machine.
            .env(
                "TANYA__INGEST__PARSE_TIMEOUT_SECS",
                if fault == "loop" { "3" } else { "60" },
            )
            .env("TANYA__INGEST__PARSE_MEMORY_MB", "768")
            .args(["ingest", "--report"])
            .arg(&report_file)
            .arg(&docs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{fault}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = report(&report_file);
        let indexed: Vec<&str> = r["indexed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["rel_path"].as_str().unwrap())
            .collect();
        assert_eq!(indexed, vec!["good.txt"], "{fault}: {r}");
        let rejected = &r["rejected"][0];
        assert_eq!(rejected["rel_path"], "bad.txt", "{fault}: {r}");
        assert_eq!(rejected["reason"], reason, "{fault}: {r}");
        assert!(!rejected["message"].as_str().unwrap().is_empty());
        // The timeout is 3 s; the run must not wait for the loop much longer than that.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{fault} took {:?}",
            started.elapsed()
        );
        // The good file is searchable.
        let out = common::tanya(&data)
            .args(["search", "--json", "cuti tahunan"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("good.txt"),
            "{fault}"
        );
    }
}

/// Whether a document write is in progress (or was cut short): an intent is recorded.
fn writing(data: &Path) -> bool {
    std::fs::read_dir(data.join("pending")).is_ok_and(|d| {
        d.flatten()
            .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    })
}

/// Chunk counts per document in both stores, and the manifest.
fn audit(data: &Path) -> (Value, Vec<(String, u64, usize, usize)>) {
    let out = common::tanya(data)
        .args(["documents", "--json", "--verify"])
        .output()
        .unwrap();
    assert!(
        !out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["rel_path"].as_str().unwrap().to_string(),
                d["chunks"].as_u64().unwrap(),
                d["stored_vectors"].as_u64().unwrap() as usize,
                d["stored_bm25"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    (v, rows)
}

#[test]
fn kill_9_at_random_moments_never_leaves_a_half_indexed_document() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let data = dir.path().join("data");
    let topics = [
        "cuti tahunan",
        "tuntutan perjalanan",
        "waktu bekerja",
        "latihan",
        "keselamatan",
    ];
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let kills = std::env::var("TANYA_KILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    // How long an uninterrupted run takes here (model loading included).
    let t = Instant::now();
    write(
        &docs,
        "doc-first.txt",
        "Dokumen pertama tentang cuti tahunan. Kod rujukan dokumen ini ialah RUJ-999.",
    );
    let out = common::tanya(&data)
        .args(["ingest"])
        .arg(&docs)
        .output()
        .unwrap();
    assert!(out.status.success());
    let full_run_ms = t.elapsed().as_millis() as u64;
    std::fs::remove_file(docs.join("doc-first.txt")).unwrap();
    let mut killed = 0;
    let mut interrupted = 0;
    let mut round = 0;
    while killed < kills {
        // A stream of documents: each round adds some and edits one.
        for _ in 0..3 {
            let i = round * 3 + rand(3) as usize;
            let t = topics[i % topics.len()];
            write(
                &docs,
                &format!("doc-{i:03}.txt"),
                &format!(
                    "Dokumen {i} tentang {t}.\n\nPerenggan pertama dokumen {i} menerangkan {t} dengan terperinci. \
                     Kod rujukan dokumen ini ialah RUJ-{i:03}.\n\nPerenggan kedua menambah butiran lanjut tentang {t} \
                     untuk semua pekerja syarikat pada tahun {}.",
                    2020 + i
                ),
            );
        }
        round += 1;
        let mut child = common::tanya(&data)
            .env(tanya::index::collection::COMMIT_PAUSE_ENV, "200")
            .args(["ingest"])
            .arg(&docs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every other kill lands at a random moment of the whole run (start-up included);
        // the others wait until a document's write has begun and kill within the next
        // moments, where a crash can do damage.
        let started = Instant::now();
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(rand(full_run_ms.max(500))));
        } else {
            while started.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none()
            {
                if writing(&data) {
                    std::thread::sleep(Duration::from_millis(rand(400)));
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if child.try_wait().unwrap().is_none() {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(child.id().to_string())
                .status();
            killed += 1;
        }
        let _ = child.wait();
        // Did this kill interrupt a document's write? (Its intent is still recorded.)
        if writing(&data) {
            interrupted += 1;
        }

        // After every kill: whatever is acknowledged is whole in both stores, and
        // nothing unacknowledged is stored.
        let (v, rows) = audit(&data);
        for (rel, chunks, vectors, bm25) in &rows {
            assert_eq!(
                (*vectors as u64, *bm25 as u64),
                (*chunks, *chunks),
                "{rel} is half-indexed after kill {killed}"
            );
        }
        let total_vectors = v["stored_vectors_total"].as_u64().unwrap();
        let total_bm25 = v["stored_bm25_total"].as_u64().unwrap();
        let acknowledged: u64 = rows.iter().map(|r| r.1).sum();
        assert_eq!(
            (total_vectors, total_bm25),
            (acknowledged, acknowledged),
            "unacknowledged chunks remain after kill {killed}"
        );
    }
    // The kills must have hit the dangerous moment, or this test proves nothing.
    assert!(
        interrupted * 4 >= killed,
        "only {interrupted} of {killed} kills interrupted a write"
    );
    // A final uninterrupted run takes in everything; every document is findable by
    // both searches, once.
    let out = common::tanya(&data)
        .args(["ingest"])
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows) = audit(&data);
    let files = std::fs::read_dir(&docs).unwrap().count();
    assert_eq!(rows.len(), files);
    for (rel, chunks, vectors, bm25) in &rows {
        assert_eq!((*vectors as u64, *bm25 as u64), (*chunks, *chunks), "{rel}");
    }
    let engine = tanya::Engine::open(common::config(&data)).unwrap();
    let public = tanya::index::passage::Access::for_groups(["public"]).unwrap();
    for (rel, _, _, _) in &rows {
        let i: usize = rel
            .trim_start_matches("doc-")
            .trim_end_matches(".txt")
            .parse()
            .unwrap();
        let code = format!("RUJ-{i:03}");
        let bm25 = engine.collection().bm25_search(&code, &public, 5).unwrap();
        assert!(
            bm25.iter().any(|(p, _)| &p.rel_path == rel),
            "{rel} not found by BM25"
        );
        let v = engine
            .embedder()
            .embed_query(&format!("Dokumen {i} kod rujukan {code}"))
            .unwrap();
        let dense = engine.collection().dense_search(&v, &public, 50).unwrap();
        assert!(
            dense.iter().any(|(p, _)| &p.rel_path == rel),
            "{rel} not found by dense search"
        );
    }
    // Re-ingesting the same folder changes nothing and duplicates nothing.
    drop(engine);
    let out = common::tanya(&data)
        .args(["ingest"])
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("0 indexed (0 chunks), {files} unchanged")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, again) = audit(&data);
    assert_eq!(again, rows);
    eprintln!(
        "{killed} kills ({interrupted} in the middle of a write), {} documents, all whole",
        rows.len()
    );
}

/// `tanya` on the small disk: write only while 64 MiB are free.
fn small_disk(data: &Path) -> Command {
    let mut c = common::tanya(data);
    c.env("TANYA__INGEST__MIN_FREE_DISK_MB", "64");
    c
}

/// A 256 MB tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            mounted,
            "this test mounts a 256 MB tmpfs and needs root (or CAP_SYS_ADMIN)"
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes a file that leaves `leave_mb` MiB free on the disk of `dir`.
fn fill_disk(dir: &Path, leave_mb: u64) -> std::path::PathBuf {
    let filler = dir.join("filler");
    let available = fs4::available_space(dir).unwrap();
    let size = available.saturating_sub(leave_mb * 1024 * 1024);
    let f = std::fs::File::create(&filler).unwrap();
    fs4::fs_std::FileExt::allocate(&f, size).unwrap();
    filler
}

/// The disk fills up (from outside) while Tanya is in use: ingest refuses to write with
/// a clear error before the stores run out of room under their memory maps, nothing is
/// half-indexed, searches go on, and the same command resumes once space is freed.
#[test]
fn a_full_disk_fails_clearly_keeps_what_is_indexed_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small-disk"));
    let mnt = disk.0.clone();
    let data = mnt.join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for i in 0..3 {
        write(
            &docs,
            &format!("awal-{i}.txt"),
            &format!("Dokumen awal {i}: kod rujukan AWAL-{i} untuk tuntutan perjalanan."),
        );
    }
    let run = |args: &[&str]| {
        let out = small_disk(&data).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let docs_arg = docs.to_str().unwrap();
    let (code, _, err) = run(&["ingest", docs_arg]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["search", "--json", "AWAL-1 tuntutan perjalanan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("awal-1.txt"));

    // The disk fills up: 16 MiB left, under the 64 MiB ingest needs.
    let filler = fill_disk(&mnt, 16);
    for i in 0..3 {
        write(
            &docs,
            &format!("baru-{i}.txt"),
            &format!(
                "Dokumen baharu {i}: kod rujukan BARU-{i} tentang latihan pekerja. {}",
                "Perenggan panjang. ".repeat(200)
            ),
        );
    }
    let (code, _, err) = run(&["ingest", docs_arg]);
    assert_eq!(code, Some(2), "a clear error, not a crash: {err}");
    assert!(err.contains("no space left for the index"), "{err}");
    assert!(
        err.contains("disk holding the data directory is full"),
        "{err}"
    );

    // What was indexed before is whole and searchable.
    let (code, out, err) = run(&["documents", "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("3 documents"), "{out}");
    let (code, out, err) = run(&["search", "--json", "AWAL-1 tuntutan perjalanan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("awal-1.txt"));

    // Space again: the same command resumes and completes.
    std::fs::remove_file(&filler).unwrap();
    let (code, _, err) = run(&["ingest", docs_arg]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&["documents", "--verify"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("6 documents"), "{out}");
    let (_, out, _) = run(&["search", "--json", "BARU-2 latihan pekerja"]);
    assert!(out.contains("baru-2.txt"));
}

/// Polls until `found` says yes (a watch pass has run), or fails after a minute.
fn eventually(what: &str, mut found: impl FnMut() -> bool) {
    let started = Instant::now();
    while !found() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the index did not follow: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watch_mode_follows_creates_edits_renames_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    write(
        &docs,
        "ada.txt",
        "Dokumen sedia ada: kod rujukan ADA-100 untuk waktu bekerja.",
    );
    let engine = tanya::Engine::open(common::config(&dir.path().join("data"))).unwrap();
    let public = tanya::index::passage::Access::for_groups(["public"]).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let passes = std::sync::atomic::AtomicUsize::new(0);
    // Which files hold `code`, as BM25 sees it.
    let holders = |code: &str| -> Vec<String> {
        let mut v: Vec<String> = engine
            .collection()
            .bm25_search(code, &public, 10)
            .unwrap()
            .into_iter()
            .filter(|(p, _)| p.text.contains(code))
            .map(|(p, _)| p.rel_path)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            engine
                .watch(
                    &docs,
                    &tanya::ingest::pipeline::IngestOptions::with_groups(vec!["public".into()]),
                    Duration::from_secs(3600),
                    &stop,
                    &mut |_| {
                        passes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    },
                )
                .unwrap();
        });
        eventually("the first pass", || holders("ADA-100") == ["ada.txt"]);

        write(
            &docs,
            "baru.txt",
            "Dokumen baharu: kod rujukan BARU-200 tentang latihan.",
        );
        eventually("a created file", || holders("BARU-200") == ["baru.txt"]);

        write(
            &docs,
            "baru.txt",
            "Dokumen baharu disemak: kod rujukan SEMAK-300 tentang latihan.",
        );
        eventually("an edited file", || {
            holders("SEMAK-300") == ["baru.txt"] && holders("BARU-200").is_empty()
        });

        std::fs::rename(docs.join("baru.txt"), docs.join("nama-baru.txt")).unwrap();
        eventually("a renamed file", || {
            holders("SEMAK-300") == ["nama-baru.txt"]
        });

        std::fs::create_dir_all(docs.join("sub")).unwrap();
        write(
            &docs.join("sub"),
            "dalam.txt",
            "Dalam subfolder: kod rujukan SUB-400.",
        );
        eventually("a file in a new subfolder", || {
            holders("SUB-400") == ["sub/dalam.txt"]
        });

        std::fs::remove_file(docs.join("ada.txt")).unwrap();
        eventually("a deleted file", || holders("ADA-100").is_empty());

        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    // Each change was followed by its own pass (no busy re-ingesting in between).
    let n = passes.load(std::sync::atomic::Ordering::SeqCst);
    assert!((6..=20).contains(&n), "{n} passes");
    let m = engine.collection().manifest();
    let mut names: Vec<&str> = m.documents.values().map(|d| d.rel_path.as_str()).collect();
    names.sort();
    assert_eq!(names, ["nama-baru.txt", "sub/dalam.txt"]);
}

#[test]
fn identical_content_is_indexed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let text = "Polisi salinan: kod rujukan SALIN-500 untuk tuntutan perjalanan.";
    write(&a, "asal.txt", text);
    write(&a, "salinan.txt", text);
    write(&b, "salinan-lain.txt", text);
    let engine = tanya::Engine::open(common::config(&dir.path().join("data"))).unwrap();
    let r = common::ingest_public(&engine, &a);
    assert_eq!(r.indexed.len(), 1, "{r:?}");
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(r.rejected[0].reason, "duplicate");
    let r = common::ingest_public(&engine, &b);
    assert_eq!(r.indexed.len(), 0, "{r:?}");
    assert_eq!(r.rejected[0].rel_path, "salinan-lain.txt");
    assert_eq!(r.rejected[0].reason, "duplicate");
    let public = tanya::index::passage::Access::for_groups(["public"]).unwrap();
    assert_eq!(
        engine
            .collection()
            .bm25_search("SALIN-500", &public, 10)
            .unwrap()
            .len(),
        1
    );
    // Once the indexed copies are gone, the remaining one is indexed.
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::create_dir_all(&a).unwrap();
    let r = common::ingest_public(&engine, &a);
    assert_eq!(r.removed.len(), 1, "{r:?}");
    let r = common::ingest_public(&engine, &b);
    assert_eq!(r.indexed.len(), 1, "{r:?}");
    let hits = engine
        .collection()
        .bm25_search("SALIN-500", &public, 10)
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0.rel_path, "salinan-lain.txt");
}

#[test]
fn email_attachments_are_documents_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let attachment =
        "Lampiran polisi: kod rujukan LAMPIR-600 untuk tuntutan perjalanan luar negara.";
    let eml = format!(
        "From: hr@syarikat.example\r\nTo: semua@syarikat.example\r\nSubject: Polisi baharu\r\n\
         Date: Mon, 2 Nov 2026 09:00:00 +0800\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n\
         --XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Sila baca polisi yang dilampirkan. Kod e-mel ini ialah EMEL-700.\r\n\
         --XYZ\r\nContent-Type: text/plain; name=\"lampiran.txt\"\r\n\
         Content-Disposition: attachment; filename=\"lampiran.txt\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--XYZ--\r\n",
        base64_encode(attachment.as_bytes())
    );
    write(&docs, "polisi.eml", &eml);
    let engine = tanya::Engine::open(common::config(&dir.path().join("data"))).unwrap();
    let r = common::ingest_public(&engine, &docs);
    let mut indexed: Vec<&str> = r.indexed.iter().map(|d| d.rel_path.as_str()).collect();
    indexed.sort();
    assert_eq!(indexed, ["polisi.eml", "polisi.eml#lampiran.txt"], "{r:?}");
    let public = tanya::index::passage::Access::for_groups(["public"]).unwrap();
    let hits = engine
        .collection()
        .bm25_search("LAMPIR-600", &public, 5)
        .unwrap();
    assert_eq!(hits[0].0.rel_path, "polisi.eml#lampiran.txt");
    // Unchanged email: its attachment stays; deleted email: both go.
    let r = common::ingest_public(&engine, &docs);
    assert_eq!((r.unchanged, r.removed.len()), (1, 0), "{r:?}");
    std::fs::remove_file(docs.join("polisi.eml")).unwrap();
    write(&docs, "lain.txt", "Dokumen lain.");
    let r = common::ingest_public(&engine, &docs);
    assert_eq!(r.removed.len(), 2, "{r:?}");
    assert!(engine
        .collection()
        .bm25_search("LAMPIR-600", &public, 5)
        .unwrap()
        .is_empty());
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bad-input corpora (`../shared/corpora`, beside the project) through the real
/// pipeline: damaged, fuzzed and encrypted PDFs, XML attacks raw and as HTML, naughty
/// strings as file names and content. Every file gets exactly one outcome, the run
/// completes, memory stays bounded, nothing is half-indexed. `#[ignore]`d for a plain
/// `cargo test` (the corpora are not in the repository); `scripts/test.sh` runs it, and it
/// fails, naming the path, when a corpus is missing or empty.
#[test]
#[ignore = "needs ../shared/corpora"]
fn the_bad_input_corpora_each_get_one_outcome() {
    let shared = common::root().join("../shared/corpora");
    assert!(
        shared.is_dir(),
        "needs ../shared/corpora: {} is not a directory",
        shared.display()
    );
    let read_corpus = |sub: &str| {
        let path = shared.join(sub);
        let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .flatten()
            .collect();
        assert!(!entries.is_empty(), "{} is empty", path.display());
        entries
    };
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let mut expected = 0;
    for sub in ["malformed-pdf", "encrypted-pdf"] {
        let before = expected;
        for e in read_corpus(sub) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".pdf") {
                std::fs::copy(e.path(), docs.join(format!("{sub}-{name}"))).unwrap();
                expected += 1;
            }
        }
        assert!(
            expected > before,
            "no PDFs in {}",
            shared.join(sub).display()
        );
    }
    for e in read_corpus("xml-attacks") {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("LICENSE") {
            continue;
        }
        let stem = name
            .rsplit_once('.')
            .map(|(s, _)| s)
            .unwrap_or(&name)
            .to_string();
        std::fs::copy(e.path(), docs.join(format!("xml-{stem}.html"))).unwrap();
        std::fs::copy(e.path(), docs.join(format!("xml-{stem}.md"))).unwrap();
        expected += 2;
    }
    let blns_path = shared.join("naughty-strings/blns.txt");
    let blns = std::fs::read_to_string(&blns_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", blns_path.display()));
    let before_naughty = expected;
    for (i, line) in blns
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .take(150)
        .enumerate()
    {
        // Only what no file system allows is replaced: '/' and NUL; names are capped.
        let mut name: String = line
            .chars()
            .map(|c| if c == '/' || c == '\0' { '_' } else { c })
            .collect();
        while name.len() > 120 {
            name.pop();
        }
        let path = docs.join(format!("n{i:03}-{name}.txt"));
        if std::fs::write(&path, format!("{line}\n\nNaughty string number {i}.")).is_ok() {
            expected += 1;
        }
    }
    assert!(
        expected > before_naughty,
        "no naughty strings from {}",
        blns_path.display()
    );
    let data = dir.path().join("data");
    let report_file = dir.path().join("report.json");
    let out = common::tanya(&data)
        .args(["ingest", "--report"])
        .arg(&report_file)
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&report_file);
    let mut outcomes: Vec<String> = r["indexed"]
        .as_array()
        .unwrap()
        .iter()
        .chain(r["rejected"].as_array().unwrap())
        .map(|d| d["rel_path"].as_str().unwrap().to_string())
        .collect();
    let total = outcomes.len();
    outcomes.sort();
    outcomes.dedup();
    assert_eq!(outcomes.len(), total, "a file got two outcomes");
    assert_eq!(r["files_seen"].as_u64().unwrap() as usize, expected, "{r}");
    assert_eq!(total, expected, "every file gets exactly one outcome");
    for rej in r["rejected"].as_array().unwrap() {
        assert!(
            !rej["reason"].as_str().unwrap().is_empty()
                && !rej["message"].as_str().unwrap().is_empty(),
            "{rej}"
        );
    }
    let rss = r["peak_rss_mib"].as_f64().unwrap();
    assert!(rss < 2048.0, "peak RSS {rss} MiB");
    let out = common::tanya(&data)
        .args(["documents", "--verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "{expected} files: {} indexed, {} rejected, peak RSS {rss:.0} MiB, {:.0} s",
        r["indexed"].as_array().unwrap().len(),
        r["rejected"].as_array().unwrap().len(),
        r["elapsed_seconds"].as_f64().unwrap()
    );
}

#[test]
fn a_changed_embedder_is_refused_until_reindex_rebuilds_and_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (i, topic) in ["annual leave", "travel claims", "office hours"]
        .iter()
        .enumerate()
    {
        write(
            &docs,
            &format!("doc-{i}.txt"),
            &format!("Policy {i} about {topic}: reference code CODE-{i}0{i} for every employee."),
        );
    }
    let data = dir.path().join("data");
    let minilm = |c: &mut Command| {
        c.env("TANYA__EMBEDDER__MODEL", "all-minilm-l6-v2");
    };
    let mut c = common::tanya(&data);
    minilm(&mut c);
    let out = c.arg("ingest").arg(&docs).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The default embedder (multilingual-e5-small) is refused, naming the remedy.
    let out = common::tanya(&data)
        .args(["search", "travel claims"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("tanya reindex") && err.contains("all-minilm-l6-v2"),
        "{err}"
    );

    // A reindex that stops right after the new index is complete (as a crash would):
    // the next start finishes the swap.
    let out = common::tanya(&data)
        .env(tanya::ingest::reindex::STOP_AFTER_READY_ENV, "1")
        .arg("reindex")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("reindex/READY").exists());
    let out = common::tanya(&data)
        .args(["documents", "--verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("3 documents"),
        "{stdout}"
    );
    assert!(!data.join("reindex").exists() && !data.join("reindex-old").exists());
    let out = common::tanya(&data)
        .args(["search", "--json", "CODE-101 travel claims"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("doc-1.txt"));

    // And back, in one uninterrupted run.
    let mut c = common::tanya(&data);
    minilm(&mut c);
    let out = c.arg("reindex").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("multilingual-e5-small/384 → all-minilm-l6-v2/384: 3 of 3 documents"),
        "{stdout}"
    );
    let mut c = common::tanya(&data);
    minilm(&mut c);
    let out = c
        .args(["search", "--json", "office hours CODE-202"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("doc-2.txt"));
}

/// The server keeps its index open: when the disk fills up to the last byte, searches
/// go on, uploads are refused with 507, and uploads work again once space is freed.
#[actix_web::test]
async fn a_running_server_keeps_answering_on_a_full_disk() {
    use actix_web::test::{self, TestRequest};
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"));
    let mnt = disk.0.clone();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    write(
        &docs,
        "awal.txt",
        "Dokumen awal: kod rujukan AWAL-900 untuk tuntutan perjalanan.",
    );
    let mut config = common::config(&mnt.join("data"));
    config.ingest.min_free_disk_mb = 64;
    let engine = std::sync::Arc::new(tanya::Engine::open(config).unwrap());
    common::ingest_public(&engine, &docs);
    let state = actix_web::web::Data::new(tanya::server::AppState::new(engine, None).unwrap());
    // An editor of `public` (the accounts database lives on the small disk too).
    let token =
        common::http::token_for(&state, "editor", tanya::accounts::Role::Editor, &["public"]);
    let app = common::http::signed_in!(state.clone(), token);
    let search = || {
        TestRequest::post()
            .uri("/api/search")
            .insert_header(("Host", "localhost"))
            .set_json(serde_json::json!({"query": "AWAL-900 tuntutan perjalanan"}))
            .to_request()
    };
    let upload = |name: &str| {
        let body = format!(
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\nDokumen baharu {name}: kod BARU-901.\r\n--B--\r\n"
        );
        TestRequest::post()
            .uri("/api/documents")
            .insert_header(("Host", "localhost"))
            .insert_header(("Content-Type", "multipart/form-data; boundary=B"))
            .set_payload(body)
            .to_request()
    };
    // Searches read what is already open, so one here materialises it first.
    assert_eq!(test::call_service(&app, search()).await.status(), 200);

    let filler = fill_disk(&mnt, 0);
    let res = test::call_service(&app, search()).await;
    assert_eq!(res.status(), 200);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["passages"][0]["rel_path"], "awal.txt");
    let res = test::call_service(&app, upload("baru.txt")).await;
    assert_eq!(res.status(), 507);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["error"]["code"], "disk_full", "{body}");

    std::fs::remove_file(&filler).unwrap();
    let res = test::call_service(&app, upload("baru.txt")).await;
    assert_eq!(res.status(), 202);
    let started = Instant::now();
    loop {
        let list: Value = test::read_body_json(
            test::call_service(
                &app,
                TestRequest::get()
                    .uri("/api/documents")
                    .insert_header(("Host", "localhost"))
                    .to_request(),
            )
            .await,
        )
        .await;
        let done = list["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "baru.txt" && d["status"] == "indexed");
        if done {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{list}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `tanya migrate` moves the vectors to a Qdrant server and back without re-embedding:
/// an interrupted copy resumes where it stopped, the configuration must then name the
/// store that holds them, and every search gives the same passages as before (the same
/// first; passages whose scores tie may come in another order).
#[test]
#[ignore = "needs a Qdrant server: QDRANT_URL (the test command runs it when set)"]
fn migrate_to_qdrant_and_back_keeps_every_search() {
    let url = std::env::var("QDRANT_URL").expect("QDRANT_URL: a Qdrant server's gRPC address");
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (i, topic) in [
        "annual leave",
        "travel claims",
        "office hours",
        "fire drills",
    ]
    .iter()
    .enumerate()
    {
        write(
            &docs,
            &format!("doc-{i}.txt"),
            &format!(
                "Policy {i} about {topic}. Reference code CODE-{i}0{i} applies to every \
                 employee.\n\nSection two of policy {i} explains the {topic} procedure in \
                 detail, with the forms to use and whom to ask."
            ),
        );
    }
    let data = dir.path().join("data");
    // On the server, BM25 too: it moves with the vectors, and back into tantivy.
    let tanya = |kind: &str| {
        let mut c = common::tanya(&data);
        c.env("TANYA__STORE__KIND", kind)
            .env("TANYA__STORE__URL", &url)
            .env("TANYA__STORE__COLLECTION", "tanya-e2e-migrate")
            .env(
                "TANYA__STORE__BM25",
                if kind == "qdrant" {
                    "qdrant"
                } else {
                    "tantivy"
                },
            );
        c
    };
    let ok = common::succeeded;
    ok(tanya("edge").arg("ingest").arg(&docs).output().unwrap());
    let queries = ["travel claims code", "fire drills procedure", "whom to ask"];
    let search = |kind: &str| -> Vec<Value> {
        queries
            .iter()
            .map(|q| {
                let out = ok(tanya(kind).args(["search", "--json", q]).output().unwrap());
                let hits: Value = serde_json::from_str(&out).unwrap();
                // Scores are the stores' own: compare the passages, in order.
                Value::Array(
                    hits.as_array()
                        .unwrap()
                        .iter()
                        .map(|h| h["passage"]["point_id"].clone())
                        .collect(),
                )
            })
            .collect()
    };
    // The same passages for every query, the same first: passages whose BM25 scores
    // tie may swap places, as the rebuilt index breaks ties in its own order.
    let same = |a: &[Value], b: &[Value]| {
        a.iter().zip(b).all(|(x, y)| {
            let (x, y) = (x.as_array().unwrap(), y.as_array().unwrap());
            let set = |v: &Vec<Value>| {
                let mut ids: Vec<String> = v.iter().map(|i| i.to_string()).collect();
                ids.sort();
                ids
            };
            x.first() == y.first() && set(x) == set(y)
        }) && a.len() == b.len()
    };
    let before = search("edge");
    assert!(before.iter().all(|h| !h.as_array().unwrap().is_empty()));

    // Interrupted after 3 chunks, then resumed: the second run copies only the rest.
    let out = tanya("edge")
        .env(tanya::index::migrate::STOP_AFTER_ENV, "3")
        .args(["migrate", "--to", "qdrant", "--bm25", "qdrant"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(data.join("vectors.migrating/qdrant.json").exists());
    let stdout = ok(tanya("edge")
        .args(["migrate", "--to", "qdrant", "--bm25", "qdrant"])
        .output()
        .unwrap());
    assert!(stdout.contains("by an earlier run"), "{stdout}");
    assert!(!stdout.contains("(0 copied now, 3 by"), "{stdout}");
    assert!(stdout.contains(", 3 by an earlier run)"), "{stdout}");
    assert!(data.join("vectors/qdrant.json").exists());
    assert!(!data.join("vectors.old").exists() && !data.join("vectors.migrating").exists());
    assert!(!data.join("bm25").exists(), "the local BM25 index is gone");

    // The configuration must say where the vectors are now.
    let out = tanya("edge").args(["search", "travel"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("kind = \"qdrant\""), "{err}");
    let on_qdrant = search("qdrant");
    assert!(same(&on_qdrant, &before), "{on_qdrant:?}\n{before:?}");
    let verify = ok(tanya("qdrant")
        .args(["documents", "--verify"])
        .output()
        .unwrap());
    assert!(verify.starts_with("4 documents"), "{verify}");

    // And back: the Qdrant collection goes, the shard is whole again.
    let stdout = ok(tanya("qdrant")
        .args(["migrate", "--to", "edge"])
        .output()
        .unwrap());
    assert!(stdout.contains("migrated qdrant → edge"), "{stdout}");
    assert!(!data.join("vectors/qdrant.json").exists());
    assert!(data.join("bm25").exists(), "BM25 is back in tantivy");
    let back = search("edge");
    assert!(same(&back, &before), "{back:?}\n{before:?}");
}
