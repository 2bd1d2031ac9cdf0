//! The simulated server's text console: what it shows (a banner with the
//! server's name, a login prompt, the keys typed so far) as a grid of
//! character cells, and the pixels of any part of it, drawn with the
//! `font8x8` glyphs at 8x16 (each glyph row doubled, as VGA text mode
//! looks). No framebuffer is kept: pixels are computed from the grid when
//! an update is sent, so a console costs a few kilobytes, not a megabyte.

use font8x8::{BASIC_FONTS, LATIN_FONTS, UnicodeFonts};

pub const COLS: usize = 80;
pub const ROWS: usize = 25;
pub const CELL_W: usize = 8;
pub const CELL_H: usize = 16;
pub const WIDTH: u16 = (COLS * CELL_W) as u16;
pub const HEIGHT: u16 = (ROWS * CELL_H) as u16;

/// The console's colours, by palette index (RGB). The banner's colour is
/// the top-left pixel, so tests can tell this console from another.
pub const PALETTE: [[u8; 3]; 4] = [
    [0x1e, 0x3a, 0x5f], // background
    [0xd8, 0xde, 0xe9], // text
    [0x3c, 0x8d, 0x5a], // banner background
    [0xff, 0xff, 0xff], // banner text
];
const BG: u8 = 0;
const FG: u8 = 1;
const BANNER_BG: u8 = 2;
const BANNER_FG: u8 = 3;

/// Rows above the login prompt: banner, blank, greeting, blank.
const HEADER_ROWS: usize = 4;

/// What the machine booted: its installed system (the image's
/// description) or Hetzner's rescue system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum System {
    Os(String),
    Rescue,
}

impl Default for System {
    fn default() -> System {
        System::Os(String::new())
    }
}

/// The rescue system's banner, as Hetzner's shows it.
pub const RESCUE_BANNER: &str = "Hetzner Rescue System";
/// The rescue system's shell prompt: it logs root in by itself.
pub const RESCUE_PROMPT: &str = "root@rescue ~ # ";

/// One character cell: the character and its (foreground, background).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub fg: u8,
    pub bg: u8,
}

const BLANK: Cell = Cell {
    ch: ' ',
    fg: FG,
    bg: BG,
};

/// The whole screen, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub cells: Vec<Cell>,
}

impl Grid {
    /// The screen of server `name` after `typed` (Return is `\n`): the
    /// prompt line and what follows, wrapped at the screen's width and
    /// scrolled so that the cursor (a reverse-video block) stays visible.
    pub fn new(name: &str, system: &System, typed: &str) -> Grid {
        let mut cells = vec![BLANK; COLS * ROWS];
        let (banner, greeting, text) = match system {
            System::Os(os) if os.is_empty() => (
                format!(" {name} - console (hcc sim)"),
                format!("hcc sim {name} tty1"),
                format!("{name} login: {typed}"),
            ),
            System::Os(os) => (
                format!(" {name} - {os} - console (hcc sim)"),
                format!("{os} {name} tty1"),
                format!("{name} login: {typed}"),
            ),
            System::Rescue => (
                format!(" {name} - {RESCUE_BANNER} (hcc sim)"),
                format!("Welcome to the {RESCUE_BANNER} on {name}"),
                format!("{RESCUE_PROMPT}{typed}"),
            ),
        };
        put_line(&mut cells, 0, &banner, BANNER_FG, BANNER_BG, true);
        put_line(&mut cells, 2, &greeting, FG, BG, false);

        let mut lines: Vec<Vec<char>> = Vec::new();
        for line in text.split('\n') {
            let chars: Vec<char> = line.chars().collect();
            if chars.is_empty() {
                lines.push(Vec::new());
            }
            for chunk in chars.chunks(COLS) {
                lines.push(chunk.to_vec());
            }
        }
        // A full last line puts the cursor at the start of the next one.
        if lines.last().is_some_and(|l| l.len() == COLS) {
            lines.push(Vec::new());
        }
        let room = ROWS - HEADER_ROWS;
        let first = lines.len().saturating_sub(room);
        let shown = &lines[first..];
        for (i, line) in shown.iter().enumerate() {
            let row = HEADER_ROWS + i;
            for (col, &ch) in line.iter().enumerate() {
                cells[row * COLS + col] = Cell { ch, fg: FG, bg: BG };
            }
        }
        if let Some(last) = shown.last() {
            let at = (HEADER_ROWS + shown.len() - 1) * COLS + last.len();
            cells[at] = Cell {
                ch: ' ',
                fg: BG,
                bg: FG,
            };
        }
        Grid { cells }
    }

    pub fn cell(&self, col: usize, row: usize) -> Cell {
        self.cells[row * COLS + col]
    }

    /// The text of each row, trailing spaces removed.
    pub fn text_rows(&self) -> Vec<String> {
        self.cells
            .chunks(COLS)
            .map(|row| {
                let line: String = row.iter().map(|c| c.ch).collect();
                line.trim_end().to_string()
            })
            .collect()
    }

    /// The palette index of pixel (x, y).
    pub fn pixel(&self, x: usize, y: usize) -> u8 {
        let cell = self.cell(x / CELL_W, y / CELL_H);
        let bits = glyph(cell.ch)[(y % CELL_H) / 2];
        // font8x8: bit 0 is the leftmost pixel.
        if bits >> (x % CELL_W) & 1 == 1 {
            cell.fg
        } else {
            cell.bg
        }
    }
}

/// Writes `text` on `row` from column 0, cut at the screen's width; `fill`
/// colours the rest of the row too.
fn put_line(cells: &mut [Cell], row: usize, text: &str, fg: u8, bg: u8, fill: bool) {
    let mut chars = text.chars();
    for col in 0..COLS {
        let ch = chars.next();
        if ch.is_none() && !fill {
            break;
        }
        cells[row * COLS + col] = Cell {
            ch: ch.unwrap_or(' '),
            fg,
            bg,
        };
    }
}

/// The glyph of `ch`; `?` for characters the font lacks.
fn glyph(ch: char) -> [u8; 8] {
    BASIC_FONTS
        .get(ch)
        .or_else(|| LATIN_FONTS.get(ch))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Can this character be shown (and so be typed)?
pub fn printable(ch: char) -> bool {
    !ch.is_control() && (BASIC_FONTS.get(ch).is_some() || LATIN_FONTS.get(ch).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_name_the_prompt_and_what_was_typed() {
        let grid = Grid::new("web1", &System::default(), "root\nls -l");
        let rows = grid.text_rows();
        assert_eq!(rows[0], " web1 - console (hcc sim)");
        assert_eq!(rows[4], "web1 login: root");
        assert_eq!(rows[5], "ls -l");
        // The cursor follows the text.
        assert_eq!(grid.cell(5, 5).bg, FG);
        assert_eq!(grid.cell(4, 5).bg, BG);
        // The banner's background is the top-left pixel.
        assert_eq!(grid.pixel(0, 0), BANNER_BG);
    }

    #[test]
    fn long_input_wraps_and_scrolls() {
        let typed = format!("{}\n", "x".repeat(200)).repeat(30);
        let grid = Grid::new("a", &System::default(), &typed);
        let rows = grid.text_rows();
        assert_eq!(rows[0], " a - console (hcc sim)");
        assert_eq!(rows[ROWS - 1], "");
        assert_eq!(rows[ROWS - 2], "x".repeat(40));
        assert_eq!(grid.cell(0, ROWS - 1).bg, FG);
        // A name longer than the screen is cut, not a panic.
        let long = "n".repeat(300);
        assert_eq!(
            Grid::new(&long, &System::default(), "").text_rows()[0].len(),
            COLS
        );
    }

    #[test]
    fn glyphs_draw_pixels() {
        let grid = Grid::new("a", &System::default(), "");
        let row = HEADER_ROWS * CELL_H;
        let lit = (0..CELL_W)
            .flat_map(|x| (row..row + CELL_H).map(move |y| (x, y)))
            .filter(|&(x, y)| grid.pixel(x, y) == FG)
            .count();
        assert!(lit > 10, "the `a` of the prompt has {lit} lit pixels");
        assert!(printable('é') && printable('a') && !printable('\u{7}'));
    }

    #[test]
    fn shows_the_booted_system() {
        let os = System::Os("Ubuntu 24.04".into());
        let rows = Grid::new("web1", &os, "").text_rows();
        assert_eq!(rows[0], " web1 - Ubuntu 24.04 - console (hcc sim)");
        assert_eq!(rows[2], "Ubuntu 24.04 web1 tty1");
        assert_eq!(rows[4], "web1 login:");
        let rows = Grid::new("web1", &System::Rescue, "ls").text_rows();
        assert!(rows[0].contains(RESCUE_BANNER), "{}", rows[0]);
        assert_eq!(rows[4], "root@rescue ~ # ls");
    }
}
