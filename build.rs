//! Embeds the browser page (`web/`) and pdf.js (from `web/node_modules`, installed by
//! `scripts/setup_web.sh`) into the binary, so that one file serves everything offline.
//! Without node_modules the page still works; its source viewer shows extracted text
//! instead of rendered PDF pages.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Files of pdfjs-dist served under /vendor/pdfjs/.
const PDFJS_FILES: &[&str] = &["build/pdf.min.mjs", "build/pdf.worker.min.mjs"];
const PDFJS_DIRS: &[&str] = &["standard_fonts"];

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "pfb" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if !matches!(name, "package.json" | "package-lock.json") {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = root.join("web");
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=web/node_modules/pdfjs-dist/package.json");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut page = Vec::new();
    walk(&web, &mut page);
    for p in page {
        let rel = p
            .strip_prefix(&web)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        files.push((format!("/{rel}"), p));
    }
    let pdfjs = web.join("node_modules/pdfjs-dist");
    let mut have_pdfjs = true;
    for f in PDFJS_FILES {
        let p = pdfjs.join(f);
        if p.is_file() {
            let name = Path::new(f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.push((format!("/vendor/pdfjs/{name}"), p));
        } else {
            have_pdfjs = false;
        }
    }
    for d in PDFJS_DIRS {
        let mut found = Vec::new();
        walk(&pdfjs.join(d), &mut found);
        for p in found {
            let rel = p
                .strip_prefix(&pdfjs)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((format!("/vendor/pdfjs/{rel}"), p));
        }
    }
    if !have_pdfjs {
        println!(
            "cargo:warning=pdf.js not found in web/node_modules: run scripts/setup_web.sh; \
             the page will show PDF sources as text"
        );
    }
    let mut code = String::from("/// Embedded web files: (URL path, content type, bytes).\n");
    code.push_str("pub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for (url, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "    ({url:?}, {:?}, include_bytes!({:?})),",
            mime(path),
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let _ = writeln!(
        code,
        "/// Whether pdf.js was embedded.\npub const HAVE_PDFJS: bool = {have_pdfjs};"
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("assets.rs");
    std::fs::write(out, code).unwrap();
}
