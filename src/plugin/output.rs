//! Plain aligned tables, ages, and colour only when writing to a terminal (and NO_COLOR unset).
use std::io::IsTerminal;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::SessionState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Green,
    Red,
    Yellow,
    Bold,
}

/// Whether to colour; decided once per stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub colour: bool,
}

fn colour_allowed(tty: bool) -> bool {
    tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Style {
    pub fn for_stdout() -> Self {
        Self {
            colour: colour_allowed(std::io::stdout().is_terminal()),
        }
    }

    pub fn for_stderr() -> Self {
        Self {
            colour: colour_allowed(std::io::stderr().is_terminal()),
        }
    }

    pub fn paint(&self, text: &str, color: Option<Color>) -> String {
        match (self.colour, color) {
            (true, Some(c)) => {
                let code = match c {
                    Color::Green => "32",
                    Color::Red => "31",
                    Color::Yellow => "33",
                    Color::Bold => "1",
                };
                format!("\x1b[{code}m{text}\x1b[0m")
            }
            _ => text.to_string(),
        }
    }

    pub fn red(&self, text: &str) -> String {
        self.paint(text, Some(Color::Red))
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(text, Some(Color::Bold))
    }
}

/// A table printed with columns aligned on the plain text, colour added after padding.
#[derive(Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<(String, Option<Color>)>>,
    indent: usize,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn indent(mut self, n: usize) -> Self {
        self.indent = n;
        self
    }

    pub fn row(&mut self, cells: Vec<(String, Option<Color>)>) {
        self.rows.push(cells);
    }

    pub fn render(&self, style: &Style) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (text, _)) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(text.chars().count());
            }
        }
        let pad = " ".repeat(self.indent);
        let mut out = String::new();
        let line = |cells: Vec<(String, Option<Color>)>, out: &mut String| {
            let mut text = pad.clone();
            let n = cells.len();
            for (i, (cell, color)) in cells.into_iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let fill = width.saturating_sub(cell.chars().count());
                text.push_str(&style.paint(&cell, color));
                if i + 1 < n {
                    text.push_str(&" ".repeat(fill + 3));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(self.header.iter().map(|h| (h.clone(), None)).collect(), &mut out);
        for row in &self.rows {
            line(row.clone(), &mut out);
        }
        out
    }
}

pub fn plain(text: impl Into<String>) -> (String, Option<Color>) {
    (text.into(), None)
}

pub fn coloured(text: impl Into<String>, color: Color) -> (String, Option<Color>) {
    (text.into(), Some(color))
}

pub fn session_colour(state: SessionState) -> Color {
    match state {
        SessionState::Established => Color::Green,
        SessionState::Unknown => Color::Yellow,
        _ => Color::Red,
    }
}

/// `45s`, `3m12s`, `5h2m`, `3d4h` since `t` (kubectl's style).
pub fn age(t: &Time) -> String {
    age_between(t.0, Timestamp::now())
}

pub fn age_between(then: Timestamp, now: Timestamp) -> String {
    let s = (now.as_second() - then.as_second()).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// One line, at most `max` characters (with an ellipsis).
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let t = |s| Timestamp::from_second(s).unwrap();
        assert_eq!(age_between(t(100), t(145)), "45s");
        assert_eq!(age_between(t(0), t(192)), "3m12s");
        assert_eq!(age_between(t(0), t(3600 * 5 + 120)), "5h2m");
        assert_eq!(age_between(t(0), t(86400 * 3 + 3600 * 4)), "3d4h");
        assert_eq!(age_between(t(10), t(0)), "0s");
    }

    #[test]
    fn tables_align_without_colour() {
        let mut table = Table::new(&["A", "LONGER"]);
        table.row(vec![plain("wide-cell"), coloured("x", Color::Red)]);
        let text = table.render(&Style { colour: false });
        assert_eq!(text, "A           LONGER\nwide-cell   x\n");
        assert!(!text.contains('\x1b'));
        let painted = table.render(&Style { colour: true });
        assert!(painted.contains("\x1b[31mx\x1b[0m"));
    }

    #[test]
    fn shortens_on_one_line() {
        assert_eq!(shorten("a\n b", 10), "a b");
        assert_eq!(shorten("abcdefghijkl", 8), "abcde...");
    }
}
