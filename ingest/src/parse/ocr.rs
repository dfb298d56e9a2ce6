//! OCR of PDF pages without a text layer, with Debian's tools as child processes: poppler's
//! `pdftoppm` renders one page to a PNG, and `tesseract` reads it (`-l msa+eng` by default).
//!
//! Both run in a fresh temporary folder that is removed afterwards, with no shell, stdin closed
//! and stdout/stderr into files (so a chatty tool cannot fill a pipe and stall), and each is
//! killed when it passes [`OcrOptions::page_timeout`]. The resolution is lowered for large
//! pages so that no rendered side exceeds [`MAX_SIDE_PX`] pixels. Text that comes back is the
//! tool's output, nothing else: the PDF never reaches a shell.
//!
//! Debian packages: `poppler-utils` (pdftoppm), `tesseract-ocr`, `tesseract-ocr-eng`,
//! `tesseract-ocr-msa`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest side of a rendered page, in pixels (A3 at 300 dpi is 4961).
pub const MAX_SIDE_PX: f64 = 5000.0;

/// Most bytes of recognised text read back for one page.
const MAX_PAGE_TEXT: u64 = 1024 * 1024;

/// How OCR runs. `Default` reads Malay and English at 300 dpi, at most 60 s per page and 200
/// pages per document, with `pdftoppm` and `tesseract` from `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrOptions {
    /// Tesseract languages, `+`-separated. Default `msa+eng`.
    pub languages: String,
    /// Rendering resolution, lowered for pages that would pass [`MAX_SIDE_PX`]. Default 300.
    pub dpi: u32,
    /// Wall-clock limit for rendering one page, and again for reading it; the tool is killed
    /// when it passes. Default 60 s.
    pub page_timeout: Duration,
    /// Most pages OCR'd in one document; further pages without text are skipped. Default 200.
    pub max_pages: usize,
    /// The `tesseract` program. Default `tesseract` (looked up on `PATH`).
    pub tesseract: PathBuf,
    /// The `pdftoppm` program. Default `pdftoppm`.
    pub pdftoppm: PathBuf,
}

impl Default for OcrOptions {
    fn default() -> Self {
        OcrOptions {
            languages: "msa+eng".to_owned(),
            dpi: 300,
            page_timeout: Duration::from_secs(60),
            max_pages: 200,
            tesseract: PathBuf::from("tesseract"),
            pdftoppm: PathBuf::from("pdftoppm"),
        }
    }
}

/// Why a page could not be OCR'd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OcrFailure {
    /// A tool, or its language data, is not installed: no page can be read.
    Unavailable(String),
    /// The page took longer than [`OcrOptions::page_timeout`].
    Timeout(String),
    /// The tool failed on this page.
    Failed(String),
}

/// One OCR run over a PDF: the file written once to a temporary folder.
pub(crate) struct OcrRun<'a> {
    opts: &'a OcrOptions,
    dir: tempfile::TempDir,
    pdf: PathBuf,
}

impl<'a> OcrRun<'a> {
    /// Writes the PDF into a new temporary folder.
    pub(crate) fn new(pdf_bytes: &[u8], opts: &'a OcrOptions) -> Result<Self, OcrFailure> {
        let dir = tempfile::Builder::new()
            .prefix("tanya-ocr-")
            .tempdir()
            .map_err(|e| OcrFailure::Failed(format!("cannot create a temporary folder: {e}")))?;
        let pdf = dir.path().join("input.pdf");
        std::fs::write(&pdf, pdf_bytes)
            .map_err(|e| OcrFailure::Failed(format!("cannot write the temporary PDF: {e}")))?;
        Ok(OcrRun { opts, dir, pdf })
    }

    /// Renders and reads page `number` (1-based) whose MediaBox measures `size_pt` points.
    pub(crate) fn page(
        &self,
        number: u32,
        size_pt: Option<(f64, f64)>,
    ) -> Result<String, OcrFailure> {
        let dir = self.dir.path();
        let stem = dir.join(format!("page-{number}"));
        let png = dir.join(format!("page-{number}.png"));
        let out = dir.join(format!("text-{number}"));
        let txt = dir.join(format!("text-{number}.txt"));
        let page = number.to_string();
        let mut render = Command::new(&self.opts.pdftoppm);
        render.args(["-f", &page, "-l", &page, "-png", "-singlefile", "-gray"]);
        match render_scale(self.opts.dpi, size_pt) {
            Scale::Dpi(dpi) => render.args(["-r", &dpi.to_string()]),
            Scale::Fit(px) => render.args(["-scale-to", &px.to_string()]),
        };
        render.arg(&self.pdf).arg(&stem);
        run(render, "pdftoppm", dir, self.opts.page_timeout)?;
        if !png.is_file() {
            return Err(OcrFailure::Failed(format!(
                "pdftoppm wrote no image for page {number}"
            )));
        }
        let mut read = Command::new(&self.opts.tesseract);
        read.arg(&png)
            .arg(&out)
            .args(["-l", &self.opts.languages])
            // One thread: the answer is the same, and the machine is shared with the embedder.
            .env("OMP_THREAD_LIMIT", "1");
        let result = run(read, "tesseract", dir, self.opts.page_timeout);
        let _ = std::fs::remove_file(&png);
        result?;
        let mut text = String::new();
        File::open(&txt)
            .and_then(|f| f.take(MAX_PAGE_TEXT).read_to_string(&mut text))
            .map_err(|e| OcrFailure::Failed(format!("tesseract output for page {number}: {e}")))?;
        let _ = std::fs::remove_file(&txt);
        Ok(text)
    }
}

enum Scale {
    Dpi(u32),
    Fit(u32),
}

/// The resolution for a page: `dpi`, lowered so the longer side stays within
/// [`MAX_SIDE_PX`]; fit to that box when the size is unknown.
fn render_scale(dpi: u32, size_pt: Option<(f64, f64)>) -> Scale {
    match size_pt {
        Some((w, h)) if w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0 => {
            let longest_in = w.max(h) / 72.0;
            let cap = (MAX_SIDE_PX / longest_in).floor();
            let dpi = f64::from(dpi.max(1)).min(cap).max(1.0);
            Scale::Dpi(dpi as u32)
        }
        _ => Scale::Fit(MAX_SIDE_PX as u32),
    }
}

/// Runs a tool to completion within `timeout`, killing it when it passes. Its stdout and
/// stderr go to files in `dir`; the start of stderr explains a failure.
fn run(mut cmd: Command, tool: &str, dir: &Path, timeout: Duration) -> Result<(), OcrFailure> {
    let err_path = dir.join(format!("{tool}.stderr"));
    let stderr = File::create(&err_path)
        .map_err(|e| OcrFailure::Failed(format!("cannot create {}: {e}", err_path.display())))?;
    let mut child = match cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OcrFailure::Unavailable(format!("{tool} is not installed")));
        }
        Err(e) => return Err(OcrFailure::Failed(format!("cannot start {tool}: {e}"))),
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(OcrFailure::Timeout(format!(
                    "{tool} ran longer than {:.1} s",
                    timeout.as_secs_f64()
                )));
            }
            Ok(None) => {
                std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(OcrFailure::Failed(format!("waiting for {tool}: {e}")));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut message = String::new();
    let _ = File::open(&err_path).and_then(|f| f.take(4096).read_to_string(&mut message));
    let message = message.trim().to_owned();
    let lower = message.to_ascii_lowercase();
    if tool == "tesseract"
        && (lower.contains("failed loading language")
            || lower.contains("couldn't load any languages"))
    {
        return Err(OcrFailure::Unavailable(format!(
            "tesseract lacks language data: {message}"
        )));
    }
    Err(OcrFailure::Failed(format!(
        "{tool} failed ({status}): {message}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_pages_render_at_a_lower_resolution() {
        assert!(matches!(
            render_scale(300, Some((595.0, 842.0))),
            Scale::Dpi(300)
        ));
        // A 100-inch-long page: 5000 px / 100 in = 50 dpi.
        assert!(matches!(
            render_scale(300, Some((720.0, 7200.0))),
            Scale::Dpi(50)
        ));
        assert!(matches!(render_scale(300, Some((1e9, 1e9))), Scale::Dpi(1)));
        assert!(matches!(render_scale(300, None), Scale::Fit(5000)));
        assert!(matches!(
            render_scale(300, Some((f64::NAN, 1.0))),
            Scale::Fit(5000)
        ));
    }

    #[test]
    fn a_missing_tool_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(
            Command::new("/nonexistent/tesseract"),
            "tesseract",
            dir.path(),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(err, OcrFailure::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn a_slow_tool_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let started = Instant::now();
        let err = run(cmd, "sleep", dir.path(), Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, OcrFailure::Timeout(_)), "{err:?}");
        // Killed, not waited out (a generous bound: this is about 30 s otherwise).
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
