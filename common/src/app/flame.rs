//! Folded stacks and flame graphs, for every tool that collects stacks
//! (`--folded FILE`, `--svg FILE`). Folded stacks are Brendan Gregg's
//! FlameGraph input: one stack a line, outermost frame first, frames joined
//! by `;`, then a space and the count. The SVG is drawn in-process by the
//! `inferno` crate (the Rust port of FlameGraph): no other program runs.

use crate::{Error, ErrorKind, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// `--folded FILE` and `--svg FILE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FlameOpts {
    /// At the end, write the stacks folded into FILE (one stack a line,
    /// outermost frame first, joined by ';', then the count): the input of
    /// FlameGraph and inferno.
    #[arg(long = "folded", value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// At the end, write an interactive flame graph (SVG, drawn by this
    /// program) into FILE; open it in a web browser.
    #[arg(long = "svg", value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// The colours of a flame graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    /// On-CPU, counted events (warm colours).
    Hot,
    /// Off-CPU time (blues).
    Io,
}

/// The files of [`FlameOpts`], created before anything is traced (a path
/// that cannot be written fails at once, not after the run).
pub struct FlameFiles {
    folded: Option<(PathBuf, File)>,
    svg: Option<(PathBuf, File)>,
}

fn create(p: &PathBuf) -> Result<(PathBuf, File)> {
    File::create(p).map(|f| (p.clone(), f)).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!("cannot create {}: {e}", p.display()),
        )
    })
}

impl FlameOpts {
    /// Whether a file was asked for.
    pub fn any(&self) -> bool {
        self.folded.is_some() || self.svg.is_some()
    }

    /// Creates the files asked for.
    pub fn create(&self) -> Result<FlameFiles> {
        Ok(FlameFiles {
            folded: self.folded.as_ref().map(create).transpose()?,
            svg: self.svg.as_ref().map(create).transpose()?,
        })
    }
}

/// A frame as a folded line holds it: no `;` (the separator) and no line
/// breaks.
pub fn clean_frame(f: &str) -> String {
    f.replace(';', ":").replace(['\n', '\r'], " ")
}

/// One folded line: `frames` outermost first.
pub fn folded_line(frames: &[String], count: u64) -> String {
    let joined: Vec<String> = frames.iter().map(|f| clean_frame(f)).collect();
    format!("{} {count}", joined.join(";"))
}

/// The SVG's title: the tool, its command line and the kernel.
pub fn title(tool: &str) -> String {
    let args: Vec<String> = crate::app::cli::args()
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{tool} {} (Linux {kernel})", args.join(" "))
        .trim()
        .to_string()
}

/// Draws `lines` (folded) as a flame graph into `w`.
pub fn svg(
    title: &str,
    count_name: &str,
    palette: Palette,
    lines: &[String],
    w: impl Write,
) -> Result<()> {
    use inferno::flamegraph::{self, color, Options};
    let mut opts = Options::default();
    opts.title = title.to_string();
    opts.count_name = count_name.to_string();
    opts.colors = match palette {
        Palette::Hot => color::Palette::Basic(color::BasicPalette::Hot),
        Palette::Io => color::Palette::Basic(color::BasicPalette::Io),
    };
    opts.deterministic = true;
    if lines.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "no stacks were counted: no flame graph to draw",
        ));
    }
    flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), w)
        .map_err(|e| Error::new(ErrorKind::Io, format!("drawing the flame graph: {e}")))
}

impl FlameFiles {
    /// Writes the files: `lines` are folded stacks; the SVG's title names
    /// `tool`, its command line and the kernel.
    pub fn write(
        self,
        tool: &str,
        count_name: &str,
        palette: Palette,
        lines: &[String],
    ) -> Result<()> {
        let io = |p: &PathBuf, e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("writing {}: {e}", p.display()))
        };
        if let Some((p, f)) = self.folded {
            let mut w = BufWriter::new(f);
            for l in lines {
                writeln!(w, "{l}").map_err(|e| io(&p, e))?;
            }
            w.flush().map_err(|e| io(&p, e))?;
            eprintln!("{tool}: wrote {} stacks to {}", lines.len(), p.display());
        }
        if let Some((p, f)) = self.svg {
            if lines.is_empty() {
                eprintln!("{tool}: no stacks were seen: {} is left empty", p.display());
                return Ok(());
            }
            let mut w = BufWriter::new(f);
            svg(&title(tool), count_name, palette, lines, &mut w)?;
            w.flush().map_err(|e| io(&p, e))?;
            eprintln!(
                "{tool}: wrote a flame graph of {} stacks to {}",
                lines.len(),
                p.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_and_svg() {
        let l = folded_line(&["main".into(), "a;b".into(), "f (x y)".into()], 7);
        assert_eq!(l, "main;a:b;f (x y) 7");
        let lines = vec![
            folded_line(&["prog".into(), "main".into(), "path_a".into()], 3),
            folded_line(&["prog".into(), "main".into(), "path_b".into()], 5),
        ];
        let mut out = Vec::new();
        svg(
            "stackcount -U x (Linux 6.1)",
            "events",
            Palette::Hot,
            &lines,
            &mut out,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("<?xml"), "{}", &s[..40]);
        assert!(s.contains("path_a") && s.contains("path_b"));
        assert!(s.contains("stackcount -U x (Linux 6.1)"));
        assert!(svg("t", "n", Palette::Io, &[], Vec::new()).is_err());
    }
}
