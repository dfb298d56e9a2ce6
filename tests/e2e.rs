//! End-to-end tests over the real models and stores: ingest the sample corpus, search,
//! answer (both modes), incremental re-ingest, bad input, CLI errors.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::*;
use tanya::config::AnswerMode;
use tanya::index::passage::Access;
use tanya::ingest::pipeline::{IngestOptions, Quiet};
use tanya::Engine;

fn public() -> Access {
    Access::for_groups(["public"]).unwrap()
}

#[test]
fn corpus_ingests_every_format() {
    let shared = corpus_engine();
    let r = &shared.report;
    assert!(r.rejected.is_empty(), "rejected: {:?}", r.rejected);
    assert!(r.indexed.len() >= 8, "indexed: {:?}", r.indexed);
    let m = shared.engine.collection().manifest();
    let formats: std::collections::HashSet<String> = m
        .documents
        .values()
        .map(|d| format!("{:?}", d.format))
        .collect();
    for f in ["Pdf", "Docx", "Html", "Markdown", "Text"] {
        assert!(formats.contains(f), "no {f} document in {formats:?}");
    }
    // Every document's chunks are all in both stores.
    for (id, d) in m.documents.iter() {
        let (v, b) = shared.engine.collection().chunk_counts(id).unwrap();
        assert_eq!(
            (v, b),
            (d.chunks as usize, d.chunks as usize),
            "{}",
            d.rel_path
        );
    }
}

#[test]
fn written_questions_find_their_document_in_top_3() {
    let shared = corpus_engine();
    let mut failures = Vec::new();
    let qs: Vec<_> = questions().into_iter().filter(|q| !q.abstain).collect();
    assert!(qs.len() >= 12, "need at least 12 answerable questions");
    for q in &qs {
        let r = shared.engine.search(&q.question, &public(), 3).unwrap();
        let doc = q.document.as_deref().unwrap();
        if !r.hits.iter().any(|h| h.passage.rel_path == doc) {
            failures.push(format!(
                "{} ({}): wanted {doc}, got {:?}",
                q.id,
                q.question,
                r.hits
                    .iter()
                    .map(|h| h.passage.location())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Share of written questions whose extractive answer must contain the fact and cite the
/// right document and page. Not 100 %: multilingual-e5-small misses some questions asked
/// in one language about a document in the other (measured misses are listed in
/// docs/quality.md); the two headline questions must always pass.
const EXTRACTIVE_FLOOR: f64 = 0.9;
const MUST_PASS: [&str; 2] = ["leave-3y-ms", "leave-3y-en"];

#[test]
fn extractive_answers_contain_the_fact_and_cite_it() {
    let shared = corpus_engine();
    let mut failures = Vec::new();
    let answerable: Vec<_> = questions().into_iter().filter(|q| !q.abstain).collect();
    for q in &answerable {
        let a = extractive(&shared.engine, &q.question);
        let doc = q.document.as_deref().unwrap();
        let has_fact = q.expect.iter().any(|e| a.text.contains(e.as_str()));
        let cited = a
            .citations
            .iter()
            .any(|c| c.rel_path == doc && (q.page.is_none() || c.page == q.page));
        if a.abstained || !has_fact || !cited {
            assert!(!MUST_PASS.contains(&q.id.as_str()), "{}: {}", q.id, a.text);
            failures.push(format!(
                "{} ({}): expected {:?} citing {doc} p.{:?}\n   got: {}\n   cites: {:?}",
                q.id,
                q.question,
                q.expect,
                q.page,
                a.text,
                a.citations
                    .iter()
                    .map(|c| (c.rel_path.clone(), c.page))
                    .collect::<Vec<_>>()
            ));
        }
        let lang = if q.lang == "ms" {
            tanya_ingest::Lang::Ms
        } else {
            tanya_ingest::Lang::En
        };
        assert_eq!(a.lang, lang, "{}", q.id);
    }
    let passed = answerable.len() - failures.len();
    println!("extractive: {passed}/{} correct", answerable.len());
    for f in &failures {
        println!("miss: {f}");
    }
    assert!(
        passed as f64 >= EXTRACTIVE_FLOOR * answerable.len() as f64,
        "{passed}/{} below the floor:\n{}",
        answerable.len(),
        failures.join("\n")
    );
}

/// Sentence vectors pooled in context (`embedder.sentence_vectors = "in-context"`): one
/// model run per chunk gives the chunk's vector exactly as before and a vector per
/// sentence that still tells the sentences apart; a sentence the run cut off (past
/// `max_length`) is embedded alone; and the choice is part of the index's identity.
#[test]
fn sentence_vectors_pooled_in_context_come_from_one_run_per_chunk() {
    use tanya::config::SentenceVectors;
    use tanya::models::embed::{Embedder, EmbedderKind};
    let load = |max_length| {
        Embedder::load(
            &models_dir(),
            EmbedderKind::MultilingualE5Small,
            0,
            1024,
            max_length,
        )
        .unwrap()
    };
    let alone = load(512);
    let in_context = load(512).with_sentence_vectors(SentenceVectors::InContext);
    assert_eq!(alone.identity(), "multilingual-e5-small/384");
    assert_eq!(
        in_context.identity(),
        "multilingual-e5-small/384/in-context"
    );
    let chunk = "Cuti Tahunan\nPekerja yang telah berkhidmat selama 2 hingga 5 tahun layak \
                 mendapat 16 hari cuti tahunan. Latihan kebakaran diadakan dua kali setahun di \
                 setiap cawangan.";
    let sentences = tanya::ingest::pipeline::passage_sentences(chunk);
    assert_eq!(sentences.len(), 2, "{sentences:?}");
    let spans: Vec<std::ops::Range<usize>> = sentences.iter().map(|s| s.start..s.end).collect();
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let pooled = in_context
        .embed_chunks(&[(chunk, &spans)])
        .unwrap()
        .remove(0);
    let separate = alone.embed_chunks(&[(chunk, &spans)]).unwrap().remove(0);
    assert_eq!((pooled.len(), separate.len()), (3, 3));
    // The chunk's own vector is the same mean over the same run.
    assert!(
        dot(&pooled[0], &separate[0]) > 0.9999,
        "{}",
        dot(&pooled[0], &separate[0])
    );
    for v in &pooled {
        let norm = dot(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not a unit vector: {norm}");
    }
    // Each pooled sentence is its own vector, read in its chunk's context: it leans to the
    // chunk more than the sentence alone does (what costs cross-language answers their
    // sentence, docs/quality.md §17), yet stays nearer its own sentence than the chunk is.
    assert!(dot(&pooled[1], &pooled[2]) < 0.999);
    for i in [1, 2] {
        assert!(
            dot(&pooled[i], &pooled[0]) < 0.9999,
            "sentence {i} is the chunk's vector"
        );
        assert!(
            dot(&pooled[i], &pooled[0]) > dot(&separate[i], &separate[0]),
            "sentence {i} pooled leans to its chunk less than alone"
        );
        assert!(
            dot(&pooled[i], &separate[i]) > dot(&pooled[0], &separate[i]),
            "sentence {i} pooled is no nearer its sentence than the chunk is"
        );
    }
    // Cut off at 24 tokens: the second sentence has no token in the run, and is embedded
    // alone (as the short run's first sentence is not).
    let short = load(24).with_sentence_vectors(SentenceVectors::InContext);
    let cut = short.embed_chunks(&[(chunk, &spans)]).unwrap().remove(0);
    let second_alone = load(24)
        .embed_passages(&[sentences[1].text.as_str()])
        .unwrap();
    assert!(dot(&cut[2], &second_alone[0]) > 0.9999);
    assert!(dot(&cut[1], &separate[1]) < 0.9999);
    // An index built with sentences alone is not opened by an in-context embedder.
    let dir = tempfile::tempdir().unwrap();
    let store = tanya::config::Config::defaults().unwrap().store;
    tanya::index::manifest::Manifest::new(&alone.identity())
        .save(dir.path())
        .unwrap();
    tanya::index::collection::Collection::open(dir.path(), &alone.identity(), 384, &store)
        .map(drop)
        .unwrap();
    let e =
        tanya::index::collection::Collection::open(dir.path(), &in_context.identity(), 384, &store)
            .err()
            .expect("a different identity is refused");
    assert!(e.to_string().contains("reindex"), "{e}");
}

/// The int8 e5 the setup script builds says what e5 says: every vector within cosine
/// 0.99 of e5's, similarities within 0.02, and the same passage first for questions in
/// either language.
#[test]
fn the_int8_e5_agrees_with_e5() {
    use tanya::models::embed::{Embedder, EmbedderKind};
    let load = |kind| Embedder::load(&models_dir(), kind, 0, 1024, 512).unwrap();
    let (full, int8) = (
        load(EmbedderKind::MultilingualE5Small),
        load(EmbedderKind::MultilingualE5SmallInt8),
    );
    assert_ne!(full.identity(), int8.identity());
    let passages = [
        "Pekerja yang telah berkhidmat selama 2 hingga 5 tahun layak mendapat 16 hari cuti tahunan.",
        "Tuntutan perjalanan hendaklah dikemukakan dalam tempoh 30 hari selepas perjalanan.",
        "Passwords must be at least 12 characters long and changed every 90 days.",
        "Fire drills are held twice a year at every branch office.",
        "Kadar elaun batu ialah 60 sen sekilometer bagi 500 kilometer pertama.",
    ];
    let questions = [
        (
            "How many days of annual leave after three years of service?",
            0,
        ),
        ("Bilakah tuntutan perjalanan perlu dihantar?", 1),
        ("Berapa panjang kata laluan yang diperlukan?", 2),
        ("How often are fire drills held?", 3),
        ("What is the mileage rate per kilometre?", 4),
    ];
    let (a, b) = (
        full.embed_passages(&passages).unwrap(),
        int8.embed_passages(&passages).unwrap(),
    );
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    for (x, y) in a.iter().zip(&b) {
        assert!(
            dot(x, y) >= 0.99,
            "passage vectors differ: cosine {}",
            dot(x, y)
        );
    }
    let mut right = 0;
    for (q, want) in questions {
        let ranked = |e: &Embedder, vectors: &[Vec<f32>]| {
            let v = e.embed_query(q).unwrap();
            let sims: Vec<f32> = vectors.iter().map(|p| dot(&v, p)).collect();
            let best = (0..sims.len())
                .max_by(|&i, &j| sims[i].total_cmp(&sims[j]))
                .unwrap();
            (best, sims)
        };
        let ((best_full, sims_full), (best_int8, sims_int8)) =
            (ranked(&full, &a), ranked(&int8, &b));
        assert_eq!(best_int8, best_full, "{q}: {sims_full:?} vs {sims_int8:?}");
        for (x, y) in sims_full.iter().zip(&sims_int8) {
            assert!((x - y).abs() < 0.02, "{q}: similarity {x} became {y}");
        }
        right += usize::from(best_full == want);
    }
    // A check that the texts are a fair probe: e5 itself gets most of them right.
    assert!(
        right >= 3,
        "e5 put the right passage first for only {right} of 5"
    );
}

/// Changing `embedder.model` brings the relevance floor calibrated for that model: with
/// the English-only MiniLM, whose similarities run lower than e5's, answers keep coming
/// (e5's floor would silence most of them) and unrelated questions still abstain.
#[test]
fn another_embedder_answers_with_its_own_relevance_floor() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("data"));
    c.embedder.model = "all-minilm-l6-v2".into();
    let e5_floor = tanya::config::Config::defaults().unwrap().min_relevance();
    let floor = c.min_relevance();
    assert!(floor < e5_floor, "{floor} vs e5's {e5_floor}");
    let engine = Engine::open(c).unwrap();
    assert_eq!(engine.min_relevance(), floor);
    ingest_public(&engine, &corpus_dir());
    let (mut right, mut below_e5) = (0, 0);
    for q in questions() {
        let a = extractive(&engine, &q.question);
        if q.abstain && !q.near_topic {
            assert!(a.abstained, "{} answered: {}", q.id, a.text);
            continue;
        }
        if !a.abstained && q.expect.iter().any(|e| a.text.contains(e.as_str())) {
            right += 1;
            if a.relevance < e5_floor {
                below_e5 += 1;
            }
        }
    }
    println!("MiniLM: {right} right, {below_e5} of them under e5's floor {e5_floor}");
    assert!(right >= 9, "only {right} right answers with MiniLM");
    assert!(
        below_e5 >= 3,
        "only {below_e5} right answers needed MiniLM's own floor"
    );
}

#[test]
fn unrelated_questions_abstain_in_their_language() {
    let shared = corpus_engine();
    let qs: Vec<_> = questions().into_iter().filter(|q| q.abstain).collect();
    assert!(qs.len() >= 2);
    for q in qs {
        let a = extractive(&shared.engine, &q.question);
        if q.near_topic {
            println!(
                "near-topic {}: abstained={} relevance={:.4}",
                q.id, a.abstained, a.relevance
            );
            continue;
        }
        assert!(a.abstained, "{} should abstain, got {}", q.question, a.text);
        assert!(a.citations.is_empty());
        let expected = if q.lang == "ms" {
            "Dokumen yang ada tidak menyatakan"
        } else {
            "The documents do not say"
        };
        assert!(a.text.starts_with(expected), "{}", a.text);
    }
}

#[test]
fn access_groups_are_enforced_in_search() {
    let shared = corpus_engine();
    let nobody = Access::for_groups(["finance-only"]).unwrap();
    let r = shared.engine.search("cuti tahunan", &nobody, 5).unwrap();
    assert!(
        r.hits.is_empty(),
        "a caller outside every group saw {:?}",
        r.hits.len()
    );
}

#[test]
fn generative_path_streams_and_parses_citations() {
    let shared = corpus_engine();
    let mut tokens = 0;
    let mut saw_passages_first = false;
    let a = shared
        .engine
        .ask(
            "How many days of annual leave do I get after 3 years of service?",
            &public(),
            AnswerMode::Generative,
            Arc::new(AtomicBool::new(false)),
            &mut |ev| match ev {
                tanya::answer::AnswerEvent::Passages(p) => {
                    saw_passages_first = tokens == 0 && !p.is_empty()
                }
                tanya::answer::AnswerEvent::Token(_) => tokens += 1,
            },
        )
        .unwrap();
    assert!(
        saw_passages_first,
        "passages must be reported before tokens"
    );
    assert!(tokens > 0, "no tokens streamed");
    assert_eq!(a.mode, AnswerMode::Generative);
    assert!(a.time_to_first_token_ms.is_some() && a.tokens_per_second.is_some());
    // Whatever the tiny model said, every surviving citation points at a given passage.
    for c in &a.citations {
        assert!(c.n >= 1 && c.n <= a.passages.len(), "{c:?}");
    }
    assert!(!a.text.is_empty());
}

/// The generative prompt gives each passage's sentences nearest the question, within
/// `answer.prompt_tokens`, in the passage's order: the same passages, numbered as shown,
/// with the sentence that answers kept.
#[test]
fn the_generative_prompt_gives_the_sentences_nearest_the_question() {
    let shared = corpus_engine();
    let engine = &shared.engine;
    let question = "How often are fire drills held at the office?";
    let given = engine.prompt_passages(question, &public()).unwrap();
    let shown = engine
        .search(question, &public(), engine.config().answer.passages)
        .unwrap()
        .hits;
    assert_eq!(
        given.len(),
        engine.config().answer.prompt_passages.min(shown.len())
    );
    let generator = engine.generator().unwrap();
    let mut tokens = 0;
    let mut cut = 0;
    for (g, s) in given.iter().zip(&shown) {
        assert_eq!(
            g.passage.point_id, s.passage.point_id,
            "the numbering changed"
        );
        let sentences: Vec<String> = g
            .passage
            .text
            .split('…')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        assert!(!sentences.is_empty());
        // Every piece is the passage's own words, in its order.
        let mut from = 0;
        for piece in &sentences {
            let at = s.passage.text[from..]
                .find(piece.as_str())
                .unwrap_or_else(|| panic!("{piece:?} is not in order in {:?}", s.passage.text));
            from += at + piece.len();
        }
        cut += usize::from(g.passage.text.len() < s.passage.text.len());
        tokens += generator.count_tokens(&g.passage.text).unwrap();
    }
    assert!(cut > 0, "no passage was cut");
    // The budget holds, give or take the "…" marks and one passage's first sentence.
    let budget = engine.config().answer.prompt_tokens;
    assert!(
        tokens <= budget + 80,
        "{tokens} tokens given for a budget of {budget}"
    );
    // The sentence the extractive answer quotes is among what the model is given.
    let quoted = engine
        .ask(
            question,
            &public(),
            AnswerMode::Extractive,
            Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )
        .unwrap();
    let first = quoted
        .citations
        .first()
        .expect("the extractive answer cites");
    assert!(
        given
            .iter()
            .any(|g| g.passage.text.contains(first.quote.trim())),
        "{:?} was not given: {:?}",
        first.quote,
        given.iter().map(|g| &g.passage.text).collect::<Vec<_>>()
    );
}

#[test]
fn reingest_is_incremental_and_follows_edits_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("parking.md"),
        "# Parking\n\nStaff parking costs RM 30 per month at the Bangsar office.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("canteen.txt"),
        "Canteen\n\nThe canteen opens at 7.30 am and closes at 3 pm on weekdays.\n",
    )
    .unwrap();
    let engine = Engine::open(config(&dir.path().join("data"))).unwrap();
    let opts = IngestOptions::with_groups(vec!["public".into()]);
    let r1 = engine.ingest(&docs, &opts, &Quiet).unwrap();
    assert_eq!(r1.indexed.len(), 2);
    assert!(r1.chunks_embedded >= 2);

    let r2 = engine.ingest(&docs, &opts, &Quiet).unwrap();
    assert_eq!(r2.chunks_embedded, 0, "unchanged corpus must embed nothing");
    assert_eq!(r2.unchanged, 2);

    std::fs::write(
        docs.join("parking.md"),
        "# Parking\n\nStaff parking costs RM 45 per month at the Bangsar office.\n",
    )
    .unwrap();
    std::fs::remove_file(docs.join("canteen.txt")).unwrap();
    let r3 = engine.ingest(&docs, &opts, &Quiet).unwrap();
    assert_eq!(r3.indexed.len(), 1);
    assert_eq!(r3.removed, vec!["canteen.txt".to_string()]);

    let hits = engine
        .search("parking fee per month", &public(), 5)
        .unwrap()
        .hits;
    assert!(hits.iter().any(|h| h.passage.text.contains("RM 45")));
    assert!(
        !hits.iter().any(|h| h.passage.text.contains("RM 30")),
        "old version still visible"
    );
    let hits = engine
        .search("canteen opening hours", &public(), 5)
        .unwrap()
        .hits;
    assert!(
        !hits.iter().any(|h| h.passage.rel_path == "canteen.txt"),
        "deleted file still found"
    );
    let m = engine.collection().manifest();
    assert_eq!(m.documents.len(), 1);
    let (id, entry) = m.documents.iter().next().unwrap();
    assert_eq!(
        engine.collection().chunk_counts(id).unwrap(),
        (entry.chunks as usize, entry.chunks as usize),
        "old chunks must be gone from both stores"
    );
}

#[test]
fn bad_files_are_skipped_with_reasons_and_the_rest_goes_in() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("good.txt"),
        "Good\n\nThe office closes at 5 pm on Fridays.\n",
    )
    .unwrap();
    std::fs::write(docs.join("picture.png"), [0x89, b'P', b'N', b'G']).unwrap();
    std::fs::write(
        docs.join("broken.pdf"),
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ntrailer\n%%EOF",
    )
    .unwrap();
    std::fs::write(docs.join("fake.docx"), b"this is not a zip").unwrap();
    // Malformed PDFs from other projects' fuzzers, some of which make parsers panic.
    let corpora = root().join("../shared/corpora/malformed-pdf");
    let mut copied = 0;
    if let Ok(entries) = std::fs::read_dir(&corpora) {
        for e in entries.flatten().take(15) {
            let name = e.file_name();
            if name.to_string_lossy().ends_with(".pdf") {
                std::fs::copy(e.path(), docs.join(&name)).unwrap();
                copied += 1;
            }
        }
    }
    let engine = Engine::open(config(&dir.path().join("data"))).unwrap();
    let r = common::ingest_public(&engine, &docs);
    assert!(r.indexed.iter().any(|d| d.rel_path == "good.txt"));
    let reason = |name: &str| {
        r.rejected
            .iter()
            .find(|x| x.rel_path == name)
            .map(|x| x.reason.clone())
    };
    assert_eq!(reason("picture.png").as_deref(), Some("unsupported"));
    assert!(reason("broken.pdf").is_some());
    assert!(reason("fake.docx").is_some());
    assert_eq!(
        r.indexed.len() + r.rejected.len(),
        4 + copied,
        "every file gets one outcome"
    );
    for x in &r.rejected {
        assert!(!x.message.is_empty());
    }
    let hits = engine
        .search("When does the office close on Friday?", &public(), 3)
        .unwrap()
        .hits;
    assert_eq!(hits[0].passage.rel_path, "good.txt");
}

#[test]
fn cli_answers_and_reports_errors_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("leave.md"),
        "# Leave\n\n## Annual leave\n\nEmployees with 3 to 5 years of service receive 18 days of annual leave per year.\n",
    )
    .unwrap();

    let out = tanya(&data).args(["ingest"]).arg(&docs).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 indexed"));

    let out = tanya(&data)
        .args(["ask", "--json", "Berapa hari cuti tahunan selepas 4 tahun?"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["text"].as_str().unwrap().contains("18 days"), "{v}");
    assert_eq!(v["lang"], "ms");
    assert_eq!(v["citations"][0]["rel_path"], "leave.md");

    // A missing path.
    let out = tanya(&data)
        .args(["ingest", "/no/such/folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("path not found: /no/such/folder"));

    // An empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = tanya(&data).arg("ingest").arg(&empty).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("holds no files Tanya can read"));

    // Missing models name the setup command.
    let out = tanya(&dir.path().join("data2"))
        .env("TANYA__PATHS__MODELS_DIR", dir.path().join("nomodels"))
        .args(["search", "cuti"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("install_models.py"), "{err}");

    // A bad configuration value.
    let out = tanya(&data)
        .env("TANYA__ANSWER__MODE", "poetry")
        .args(["search", "cuti"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("poetry"));
}

#[test]
fn second_process_on_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _engine = Engine::open(config(&data)).unwrap();
    let out = tanya(&data).args(["search", "cuti"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another Tanya process"));
}

/// Runs `tanya <args> --index d/index --json d/<json>` in `d` (file arguments are
/// relative to it); returns its stderr and the JSON it wrote.
fn run_eval(d: &std::path::Path, args: &[&str], json: &str) -> (String, serde_json::Value) {
    let out = tanya(&d.join("unused"))
        .current_dir(d)
        .args(args)
        .args(["--index", "index", "--json", json])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join(json)).unwrap()).unwrap();
    (stderr, v)
}

#[test]
fn eval_scores_retrieval_and_answers_on_a_beir_layout_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("qrels")).unwrap();
    std::fs::write(
        d.join("corpus.jsonl"),
        concat!(
            r#"{"_id":"leave","title":"Annual leave","text":"Employees with two to five years of service receive 16 days of annual leave each year."}"#, "\n",
            r#"{"_id":"claims/2","title":"Travel claims","text":"Mileage for private cars is reimbursed at 70 sen per kilometre for official travel."}"#, "\n",
            r#"{"_id":"hours","title":"Working hours","text":"Office hours are from 8.30 in the morning to 5.30 in the evening, Monday to Friday."}"#, "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("queries.jsonl"),
        concat!(
            r#"{"_id":"q1","text":"How many days of annual leave after three years of service?"}"#,
            "\n",
            r#"{"_id":"q2","text":"What is the mileage rate for private cars?"}"#,
            "\n",
            r#"{"_id":"q3","text":"When does the office open in the morning?"}"#,
            "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\tleave\t1\nq2\tclaims/2\t1\nq3\thours\t1\n",
    )
    .unwrap();
    std::fs::write(
        d.join("answers.jsonl"),
        concat!(
            r#"{"qid":"q1","answers":["16 days"],"gold_doc":"leave"}"#,
            "\n",
            r#"{"qid":"q2","answers":["70 sen per kilometre"],"gold_doc":"claims/2"}"#,
            "\n",
            r#"{"qid":"q3","answers":["8.30"],"gold_doc":"hours"}"#,
            "\n",
        ),
    )
    .unwrap();
    let eval = |what: &str, files: [(&str, &str); 2], json: &str| {
        let mut args = vec!["eval", what, "--corpus", "corpus.jsonl"];
        for (flag, file) in files {
            args.extend([flag, file]);
        }
        run_eval(d, &args, json)
    };
    let (_, scores) = eval(
        "retrieval",
        [
            ("--queries", "queries.jsonl"),
            ("--qrels", "qrels/test.tsv"),
        ],
        "retrieval.json",
    );
    let modes: Vec<&str> = scores
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["bm25", "dense", "hybrid"]);
    for s in scores.as_array().unwrap() {
        assert_eq!(s["queries"], 3);
        assert!(s["recall_at_100"].as_f64().unwrap() == 1.0, "{s}");
    }
    let hybrid = &scores[2];
    assert_eq!(hybrid["ndcg_at_10"].as_f64().unwrap(), 1.0, "{hybrid}");

    let (stderr, a) = eval(
        "answers",
        [
            ("--questions", "queries.jsonl"),
            ("--answers", "answers.jsonl"),
        ],
        "answers.json",
    );
    // The second run reuses the scratch index: nothing is embedded again.
    assert!(stderr.contains("0 indexed, 3 unchanged"), "{stderr}");
    assert_eq!(a[0]["questions"], 3);
    assert_eq!(a[0]["citation_accuracy"].as_f64().unwrap(), 1.0, "{a}");
    assert_eq!(a[0]["contains"].as_f64().unwrap(), 1.0, "{a}");
}

#[test]
fn eval_bm25_alone_needs_no_vectors_and_scores_like_the_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = d.join("corpus.jsonl");
    let mut lines = String::new();
    for (i, (title, text)) in [
        (
            "Annual leave",
            "Employees receive 16 days of annual leave after three years.",
        ),
        (
            "Travel claims",
            "Mileage is reimbursed at 70 sen per kilometre.",
        ),
        (
            "Working hours",
            "Office hours are from 8.30 to 5.30, Monday to Friday.",
        ),
        (
            "Cuti sakit",
            "Pekerja berhak mendapat 18 hari cuti sakit setahun.",
        ),
    ]
    .iter()
    .enumerate()
    {
        lines.push_str(&format!(
            "{{\"_id\":\"d{i}\",\"title\":\"{title}\",\"text\":\"{text}\"}}\n"
        ));
    }
    std::fs::write(&corpus, lines).unwrap();
    std::fs::write(
        d.join("queries.jsonl"),
        "{\"_id\":\"a\",\"text\":\"annual leave days\"}\n{\"_id\":\"b\",\"text\":\"kilometre mileage\"}\n{\"_id\":\"c\",\"text\":\"cuti sakit\"}\n{\"_id\":\"e\",\"text\":\"office Friday\"}\n",
    )
    .unwrap();
    // One query is judged against a document BM25 cannot find by its words.
    std::fs::write(
        d.join("qrels.tsv"),
        "query-id\tcorpus-id\tscore\na\td0\t1\nb\td1\t1\nc\td3\t1\ne\td0\t1\n",
    )
    .unwrap();
    let run = |modes: &str, json: &str| {
        let args = [
            "eval",
            "retrieval",
            "--corpus",
            "corpus.jsonl",
            "--queries",
            "queries.jsonl",
            "--qrels",
            "qrels.tsv",
            "--mode",
            modes,
        ];
        run_eval(d, &args, json)
    };
    let (stderr, alone) = run("bm25", "alone.json");
    assert!(
        stderr.contains("BM25 index (tantivy, in memory)"),
        "{stderr}"
    );
    assert!(
        !d.join("index/data").exists(),
        "BM25 alone must not build the vector index"
    );
    let (_, full) = run("bm25,dense", "full.json");
    assert_eq!(alone[0]["mode"], "bm25");
    for metric in ["ndcg_at_10", "recall_at_10", "mrr_at_10"] {
        assert_eq!(
            alone[0][metric], full[0][metric],
            "{metric}: {alone} vs {full}"
        );
    }
    let ndcg = alone[0]["ndcg_at_10"].as_f64().unwrap();
    assert!(ndcg > 0.5 && ndcg < 1.0, "{alone}");
}

/// Search results of `engine` for `query`: (rel_path, rerank score).
fn ranked(engine: &Engine, query: &str) -> Vec<(String, Option<f32>)> {
    engine
        .search(query, &public(), 5)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.passage.rel_path, h.rerank))
        .collect()
}

/// Three small documents; a search for annual leave finds `leave.txt` first.
fn rerank_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in [
        (
            "leave.txt",
            "Annual leave policy: employees receive 16 days of annual leave.",
        ),
        (
            "fruit1.txt",
            "The canteen sells a banana and coffee every morning.",
        ),
        (
            "fruit3.txt",
            "Banana bread, banana cake and banana juice are on the menu.",
        ),
    ] {
        std::fs::write(docs.join(name), text).unwrap();
    }
    docs
}

#[test]
fn a_cross_encoder_the_user_brings_reorders_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let docs = rerank_fixture(dir.path());
    let toy = dir.path().join("toy-reranker");
    // A toy cross-encoder whose score is the number of "banana" tokens in the pair
    // (tests/fixtures/toy_reranker.py), so the order it must produce is known.
    let python = models_dir().parent().unwrap().join("venv/bin/python");
    let status = std::process::Command::new(&python)
        .arg(root().join("tests/fixtures/toy_reranker.py"))
        .arg(models_dir())
        .arg(&toy)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/install_models.py)", python.display()));
    assert!(status.success());

    let plain = Engine::open(config(&dir.path().join("plain"))).unwrap();
    ingest_public(&plain, &docs);
    let before = ranked(&plain, "annual leave policy");
    assert_eq!(before[0].0, "leave.txt", "{before:?}");
    assert!(before.iter().all(|(_, r)| r.is_none()));
    drop(plain);

    let mut c = config(&dir.path().join("reranked"));
    c.rerank.model = toy.display().to_string();
    let engine = Engine::open(c).unwrap();
    assert!(engine.has_cross_encoder());
    ingest_public(&engine, &docs);
    let after = ranked(&engine, "annual leave policy");
    let order: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        order,
        ["fruit3.txt", "fruit1.txt", "leave.txt"],
        "{after:?}"
    );
    let scores: Vec<f32> = after.iter().map(|(_, r)| r.unwrap()).collect();
    assert_eq!(scores, [3.0, 1.0, 0.0]);

    // A broken reranker directory is a clear error at start, not a panic.
    let mut c = config(&dir.path().join("broken"));
    c.rerank.model = dir.path().join("nothing-here").display().to_string();
    let err = Engine::open(c).err().expect("must fail").to_string();
    assert!(err.contains("nothing-here"), "{err}");
}

#[test]
fn the_llm_rerank_pass_scores_candidates_with_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let docs = rerank_fixture(dir.path());
    let mut c = config(&dir.path().join("data"));
    c.rerank.llm = true;
    c.rerank.llm_candidates = 2;
    let engine = Engine::open(c).unwrap();
    ingest_public(&engine, &docs);
    let hits = ranked(&engine, "How many days of annual leave?");
    assert_eq!(hits.len(), 3);
    // The two best fused candidates were judged (finite scores, best first); the third
    // was not.
    let judged: Vec<f32> = hits[..2].iter().map(|(_, r)| r.expect("judged")).collect();
    assert!(judged.iter().all(|s| s.is_finite()), "{hits:?}");
    assert!(judged[0] >= judged[1], "{hits:?}");
    assert_eq!(hits[2].1, None, "{hits:?}");
}

#[test]
fn questions_during_an_ingest_batch_use_a_session_of_their_own_with_the_same_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(common::config(&dir.path().join("data"))).unwrap();
    let embedder = engine.embedder();
    let question = "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?";
    let idle = embedder.embed_query(question).unwrap();
    assert!(!embedder.has_question_session());
    // A long ingest batch holds the passage session; questions keep coming meanwhile.
    let passages: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "Perenggan {i}: pekerja layak mendapat cuti tahunan mengikut tempoh perkhidmatan."
            )
        })
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let during = std::thread::scope(|s| {
        s.spawn(|| {
            embedder.embed_passages(&passages).unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut during = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            during.push(embedder.embed_query(question).unwrap());
        }
        during
    });
    assert!(
        embedder.has_question_session(),
        "no question came while the batch ran"
    );
    for v in &during {
        let cos: f32 = v.iter().zip(&idle).map(|(a, b)| a * b).sum();
        assert!(
            cos > 0.9999,
            "the question session embeds differently: {cos}"
        );
    }
}

#[test]
fn eval_questions_asks_conversations_and_scores_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let docs = d.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(
        common::corpus_dir().join("cuti-tahunan.pdf"),
        docs.join("cuti-tahunan.pdf"),
    )
    .unwrap();
    let line = |id: &str, conv: &str, turn: u32, kind: &str, q: &str, doc: &str, fact: &str| {
        serde_json::json!({
            "id": id, "conversation": if conv.is_empty() { serde_json::Value::Null } else { conv.into() },
            "turn": turn, "lang": "ms", "kind": kind, "question": q, "style": "formal",
            "document": if doc.is_empty() { serde_json::Value::Null } else { doc.into() },
            "page": null, "answer_contains": if fact.is_empty() { vec![] } else { vec![fact] },
            "note": ""
        })
        .to_string()
    };
    let set = [
        line(
            "t1",
            "c",
            1,
            "same-language",
            "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?",
            "cuti-tahunan.pdf",
            "16 hari",
        ),
        line(
            "t2",
            "",
            1,
            "unanswerable",
            "Siapakah pemenang Piala Dunia 2018?",
            "",
            "",
        ),
        line(
            "t3",
            "c",
            2,
            "follow-up",
            "dan selepas 12 tahun?",
            "cuti-tahunan.pdf",
            "24 hari",
        ),
    ];
    std::fs::write(d.join("set.jsonl"), set.join("\n") + "\n").unwrap();
    let (_, v) = run_eval(
        d,
        &["eval", "questions", "--set", "set.jsonl", "--docs", "docs"],
        "questions.json",
    );
    let outcomes = v["outcomes"].as_array().unwrap();
    // The conversation's turns are asked together, in order.
    let ids: Vec<&str> = outcomes.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t1", "t3", "t2"], "{v}");
    assert_eq!(outcomes[0]["right"], true, "{v}");
    assert_eq!(outcomes[0]["cited"], "cuti-tahunan.pdf", "{v}");
    assert_eq!(outcomes[2]["abstained"], true, "{v}");
    assert_eq!(v["by_kind"]["unanswerable"]["asked"], 1, "{v}");
    assert_eq!(v["overall"]["asked"], 3, "{v}");
    assert_eq!(v["false_abstention"]["asked"], 2, "{v}");
}

fn first_cited_file(a: &tanya::answer::Answer) -> String {
    a.citations
        .first()
        .map(|c| c.rel_path.rsplit('/').next().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn a_question_finds_its_answer_in_the_other_language_and_says_so() {
    let shared = corpus_engine();
    let a = extractive(
        &shared.engine,
        "How many written quotations are needed for a purchase of RM20,000?",
    );
    assert_eq!(first_cited_file(&a), "perolehan.pdf", "{}", a.text);
    assert!(
        a.text
            .starts_with("According to the documents (quoted in Malay):"),
        "{}",
        a.text
    );
    assert!(a.text.contains("tiga sebut harga"), "{}", a.text);
    let b = extractive(
        &shared.engine,
        "Berapakah kadar tuntutan perbatuan untuk kereta?",
    );
    assert_eq!(first_cited_file(&b), "travel-claims.pdf", "{}", b.text);
    assert!(
        b.text
            .starts_with("Menurut dokumen (petikan dalam bahasa Inggeris):"),
        "{}",
        b.text
    );
    assert!(b.text.contains("RM0.60"), "{}", b.text);
    // The quickstart's English question: the annual-leave row, not the sick-leave row
    // that shares its words once stemmed ("cuti … tahun").
    let d = extractive(
        &shared.engine,
        "How many days of annual leave do I get after 3 years of service?",
    );
    assert_eq!(first_cited_file(&d), "cuti-tahunan.pdf", "{}", d.text);
    assert!(d.text.contains("16 hari cuti tahunan"), "{}", d.text);
    // A quote in the question's own language says nothing of languages.
    let c = extractive(
        &shared.engine,
        "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?",
    );
    assert!(c.text.starts_with("Menurut dokumen: "), "{}", c.text);
}

#[test]
fn an_empty_index_says_how_to_add_documents_instead_of_abstaining() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(&dir.path().join("data"))).unwrap();
    for (q, expected) in [
        (
            "Berapa hari cuti sakit setahun?",
            "Belum ada dokumen yang diindeks",
        ),
        ("How many days of sick leave?", "Nothing is indexed yet"),
    ] {
        let a = extractive(&engine, q);
        assert!(a.nothing_indexed, "{}", a.text);
        assert!(!a.abstained);
        assert!(a.text.starts_with(expected), "{}", a.text);
        assert!(a.text.contains("tanya ingest"), "{}", a.text);
    }
    // Documents the caller may not see count as none.
    ingest_public(&engine, &corpus_dir().join("cuti-sakit.docx"));
    let other = Access::for_groups(["finance"]).unwrap();
    let a = engine
        .ask(
            "Berapa hari cuti sakit setahun?",
            &other,
            AnswerMode::Extractive,
            Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )
        .unwrap();
    assert!(a.nothing_indexed, "{}", a.text);
    assert!(!extractive(&engine, "Berapa hari cuti sakit setahun?").nothing_indexed);
}

#[test]
fn a_follow_up_gets_the_new_fact_and_a_new_question_is_asked_alone() {
    let shared = corpus_engine();
    let ask = |q: &str, history: &[tanya::engine::Turn]| {
        shared
            .engine
            .ask_follow_up(
                q,
                history,
                &public(),
                AnswerMode::Extractive,
                Arc::new(AtomicBool::new(false)),
                &mut |_| {},
            )
            .unwrap()
    };
    let mut history = Vec::new();
    let first = ask(
        "Berapa hari cuti tahunan untuk pekerja yang berkhidmat kurang daripada 2 tahun?",
        &history,
    );
    assert!(first.text.contains("14 hari"), "{}", first.text);
    history.push(tanya::engine::Turn {
        question: "Berapa hari cuti tahunan untuk pekerja yang berkhidmat kurang daripada 2 tahun?"
            .into(),
        answer: first.text.clone(),
    });
    let follow = ask("kalau lebih 10 tahun pula?", &history);
    assert_eq!(
        first_cited_file(&follow),
        "cuti-tahunan.pdf",
        "{}",
        follow.text
    );
    assert!(follow.text.contains("24 hari"), "{}", follow.text);
    assert!(
        !follow.text.contains("14 hari"),
        "the previous quote again: {}",
        follow.text
    );
    history.push(tanya::engine::Turn {
        question: "kalau lebih 10 tahun pula?".into(),
        answer: follow.text.clone(),
    });
    // A complete question on another topic is not read as part of the leave talk.
    let switch = ask("What is the mileage rate for private cars?", &history);
    assert_eq!(
        first_cited_file(&switch),
        "travel-claims.pdf",
        "{}",
        switch.text
    );
    assert!(switch.text.contains("RM0.60"), "{}", switch.text);
}

/// Runs `tanya` with `stdin` as its standard input.
fn tanya_with_stdin(data: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = tanya(data);
    cmd.args(args);
    common::run_with_stdin(cmd, stdin)
}

#[test]
fn users_and_tokens_are_managed_while_another_process_holds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An open engine holds the data directory's lock, as `tanya serve` does.
    let engine = Engine::open(config(&data)).unwrap();
    let out = tanya_with_stdin(
        &data,
        &[
            "users",
            "add",
            "aminah",
            "--admin",
            "--groups",
            "HR-1,Kewangan",
            "--password-stdin",
        ],
        "kata-laluan-rahsia\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("added aminah (admin, groups: HR-1,Kewangan)"),
        "{stdout}"
    );
    // A user's mistake: exit 2 and a message saying what to do.
    let out = tanya_with_stdin(
        &data,
        &["users", "add", "ali", "--password-stdin"],
        "short\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));
    let out = tanya_with_stdin(&data, &["users", "list", "--json"], "");
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[0]["groups"], serde_json::json!(["HR-1", "Kewangan"]));
    assert!(!users.to_string().contains("argon2"), "{users}");

    let out = tanya_with_stdin(
        &data,
        &[
            "tokens", "create", "aminah", "--label", "import", "--role", "editor",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(secret.starts_with("tanya_"), "{secret}");
    let listed = tanya_with_stdin(&data, &["tokens", "list"], "");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("aminah  editor  \"import\""), "{listed}");
    assert!(!listed.contains(&secret));
    // Neither the password nor the token is stored in clear.
    let db = std::fs::read(data.join(tanya::accounts::FILE)).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(!db.contains("kata-laluan-rahsia") && !db.contains(&secret));
    let accounts = tanya::accounts::Accounts::open(&data).unwrap();
    assert!(accounts.token_user(&secret).unwrap().is_some());
    let out = tanya_with_stdin(&data, &["tokens", "revoke", "1"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(accounts.token_user(&secret).unwrap().is_none());
    let out = tanya_with_stdin(&data, &["tokens", "revoke", "1"], "");
    assert_eq!(out.status.code(), Some(2));
    drop(engine);
}

/// `tanya serve` on a free loopback port over `data`; killed when dropped.
struct Serving {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Serving {
    fn start(data: &std::path::Path, log: std::path::PathBuf) -> Serving {
        let out = std::fs::File::create(&log).unwrap();
        let child = common::tanya(data)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut s = Serving { child, log };
        let started = std::time::Instant::now();
        while !data.join("server.json").exists() {
            assert!(
                started.elapsed().as_secs() < 120 && s.child.try_wait().unwrap().is_none(),
                "the server did not start: {}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        s
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_command_line_works_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(
        common::corpus_dir().join("cuti-tahunan.pdf"),
        docs.join("cuti-tahunan.pdf"),
    )
    .unwrap();
    let server = Serving::start(&data, dir.path().join("serve.log"));
    let run = |args: &[&str]| {
        let out = common::tanya(&data).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The key the server left is for its account alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("server.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (code, out, err) = run(&["ingest", docs.to_str().unwrap(), "--groups", "HR"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("goes through it"), "{err}");
    assert!(out.contains("1 indexed"), "{out}");
    let (code, out, err) = run(&["documents"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("cuti-tahunan.pdf") && out.contains("1 documents"),
        "{out}"
    );
    let (code, out, err) = run(&[
        "ask",
        "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("16 hari"), "{out}");
    assert!(out.contains("[1] cuti-tahunan.pdf"), "{out}");
    let (code, out, err) = run(&["search", "cuti tahunan", "-k", "2"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(" 1. cuti-tahunan.pdf"), "{out}");
    // What needs the index itself says so, as a user's error.
    let (code, _, err) = run(&["documents", "--verify"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("stop `tanya serve` first"), "{err}");
    // A wrong key is refused by the server.
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("server.json")).unwrap()).unwrap();
    let key = file["key"].as_str().unwrap().to_string();
    file["key"] = serde_json::json!(format!("tanya_local_{}", "A".repeat(43)));
    std::fs::write(data.join("server.json"), file.to_string()).unwrap();
    let (code, _, err) = run(&["documents"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("401"), "{err}");
    file["key"] = serde_json::json!(key);
    std::fs::write(data.join("server.json"), file.to_string()).unwrap();

    // Stopped, the server takes its file with it, and the command line opens the index.
    let mut server = server;
    terminate(server.child.id());
    let _ = server.child.wait();
    assert!(!data.join("server.json").exists());
    let (code, out, err) = run(&["documents", "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Asks a process to stop as Ctrl+C would.
fn terminate(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_backup_made_while_the_server_runs_restores_whole_with_its_people() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for name in ["cuti-tahunan.pdf", "waktu-bekerja.md"] {
        std::fs::copy(common::corpus_dir().join(name), docs.join(name)).unwrap();
    }
    let out = tanya_with_stdin(
        &data,
        &[
            "users",
            "add",
            "siti",
            "--groups",
            "public",
            "--password-stdin",
        ],
        "kata-laluan-siti\n",
    );
    assert!(out.status.success());
    let server = Serving::start(&data, dir.path().join("serve.log"));
    let run = |data: &std::path::Path, args: &[&str]| {
        let out = common::tanya(data).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&data, &["ingest", docs.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let backup = dir.path().join("backup");
    let (code, out, err) = run(&data, &["backup", backup.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("2 documents, 2 people"), "{out}");
    // Not the lock, the key of the running server, or its first password.
    for absent in ["tanya.lock", "server.json", "first-admin-password.txt"] {
        assert!(!backup.join(absent).exists(), "{absent} was copied");
    }
    assert!(backup.join("accounts.db").exists());
    // A second backup into the same folder is refused.
    let (code, _, err) = run(&data, &["backup", backup.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    drop(server);

    let restored = dir.path().join("restored");
    let (code, out, err) = run(&restored, &["restore", backup.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("every document is whole"), "{out}");
    let (code, out, err) = run(
        &restored,
        &[
            "ask",
            "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("16 hari"), "{out}");
    let accounts = tanya::accounts::Accounts::open(&restored).unwrap();
    assert!(accounts
        .verify_password("siti", "kata-laluan-siti")
        .unwrap()
        .is_some());
    // Restoring over a data directory in use is refused.
    let (code, _, err) = run(&restored, &["restore", backup.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn https_with_the_users_certificate_and_a_secure_session_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg("/CN=tanya.pejabat.local")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = tanya_with_stdin(
        &data,
        &["users", "add", "siti", "--password-stdin"],
        "kata-laluan-siti\n",
    );
    assert!(out.status.success());
    let with_tls = |cmd: &mut std::process::Command| {
        cmd.env("TANYA__SERVER__TLS_CERT", &cert)
            .env("TANYA__SERVER__TLS_KEY", &key);
    };
    let log = dir.path().join("serve.log");
    let mut serve = common::tanya(&data);
    with_tls(&mut serve);
    let out = std::fs::File::create(&log).unwrap();
    let child = serve
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let server = Serving {
        child,
        log: log.clone(),
    };
    let started = std::time::Instant::now();
    let url = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(i) = text.find("Tanya is serving on ") {
            let rest = &text[i + "Tanya is serving on ".len()..];
            break rest[..rest.find('\n').unwrap()]
                .trim_end_matches('/')
                .to_string();
        }
        assert!(started.elapsed().as_secs() < 120, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // A browser-like client that trusts the certificate: signing in sets a Secure cookie.
    let signed = std::process::Command::new("curl")
        .args(["-sS", "-i", "--cacert"])
        .arg(&cert)
        .args(["--resolve"])
        .arg(format!(
            "tanya.pejabat.local:{}:127.0.0.1",
            url.rsplit(':').next().unwrap()
        ))
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"name": "siti", "password": "kata-laluan-siti"}"#)
        .arg(format!(
            "https://tanya.pejabat.local:{}/api/session",
            url.rsplit(':').next().unwrap()
        ))
        .output()
        .unwrap();
    let response = String::from_utf8_lossy(&signed.stdout).to_ascii_lowercase();
    let response = if response.is_empty() {
        format!("(curl: {})", String::from_utf8_lossy(&signed.stderr))
    } else {
        response
    };
    // The certificate's name is not an allowed host until it is listed.
    assert!(
        response.starts_with("http/1.1 403") || response.starts_with("http/2 403"),
        "{response}"
    );
    assert!(response.contains("host_not_allowed"), "{response}");
    drop(server);

    // Listed in server.allowed_hosts, the name works, and the cookie is Secure.
    let mut serve = common::tanya(&data);
    with_tls(&mut serve);
    let out = std::fs::File::create(&log).unwrap();
    let child = serve
        .env("TANYA__SERVER__ALLOWED_HOSTS", r#"["tanya.pejabat.local"]"#)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let _server = Serving {
        child,
        log: log.clone(),
    };
    let started = std::time::Instant::now();
    let port = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(i) = text.find("Tanya is serving on https://127.0.0.1:") {
            let rest = &text[i + "Tanya is serving on https://127.0.0.1:".len()..];
            break rest[..rest.find('/').unwrap()].to_string();
        }
        assert!(started.elapsed().as_secs() < 120, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let signed = std::process::Command::new("curl")
        .args(["-sS", "-i", "--cacert"])
        .arg(&cert)
        .arg("--resolve")
        .arg(format!("tanya.pejabat.local:{port}:127.0.0.1"))
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"name": "siti", "password": "kata-laluan-siti"}"#)
        .arg(format!("https://tanya.pejabat.local:{port}/api/session"))
        .output()
        .unwrap();
    let response = String::from_utf8_lossy(&signed.stdout).to_ascii_lowercase();
    assert!(response.contains(" 200"), "{response}");
    let cookie = response
        .lines()
        .find(|l| l.starts_with("set-cookie: tanya_session="))
        .unwrap_or_else(|| panic!("{response}"));
    for attribute in ["secure", "httponly", "samesite=strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Plain HTTP to the HTTPS port gets nothing.
    let plain = std::process::Command::new("curl")
        .args(["-sS", "-m", "5"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("ok"));
    // The command line reaches it over HTTPS, trusting exactly that certificate.
    let mut documents = common::tanya(&data);
    with_tls(&mut documents);
    let out = documents.arg("documents").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 documents"));
}
