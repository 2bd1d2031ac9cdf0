//! Plain-text tables for humans: a header row, columns padded to the
//! widest cell, two spaces between. Machines use `--json` instead.

pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; control characters in its cells are escaped here, so
    /// that the columns line up with what the terminal shows.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|cell| crate::output::one_line(&cell).into_owned())
                .collect(),
        );
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_control_characters_are_escaped_and_still_line_up() {
        let mut t = Table::new(&["NAME", "STATUS"]);
        t.row(vec!["a\u{1b}[2J".into(), "off".into()]);
        t.row(vec!["b".into(), "on\r".into()]);
        assert_eq!(
            t.render(),
            "NAME        STATUS\na\\u001b[2J  off\nb           on\\u000d\n"
        );
    }

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let mut t = Table::new(&["NAME", "STATUS"]);
        t.row(vec!["vm1".into(), "running".into()]);
        t.row(vec!["a-long-name".into(), "off".into()]);
        assert_eq!(
            t.render(),
            "NAME         STATUS\nvm1          running\na-long-name  off\n"
        );
    }
}
