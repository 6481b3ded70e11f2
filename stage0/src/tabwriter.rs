//! Column alignment as rkt prints tables: Go's `text/tabwriter` initialised with minwidth 0,
//! tabwidth 8, padding 1, padchar '\t' and no flags. Cells are tab-terminated; the last cell of a
//! line is not part of a column. A column's width is the widest cell plus the padding, rounded up
//! to a multiple of the tab width, and cells are padded with tabs. A column block ends at the
//! first line that has no cell in that column, as in Go.

const TAB_WIDTH: usize = 8;
const PADDING: usize = 1;

/// Collects lines of tab-separated cells and renders them aligned.
#[derive(Default)]
pub struct TabWriter {
    lines: Vec<Vec<String>>,
}

impl TabWriter {
    pub fn new() -> TabWriter {
        TabWriter::default()
    }

    /// Adds one line; `cells` are separated by tabs in Go's terms (all but the last are
    /// tab-terminated).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.lines.push(cells.into_iter().map(Into::into).collect());
    }

    /// Renders all lines, each ending with a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let widths = self.column_widths();
        for (i, line) in self.lines.iter().enumerate() {
            for (col, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if col + 1 < line.len() {
                    let width = widths[i][col];
                    let text = cell.chars().count();
                    let pad = width.saturating_sub(text);
                    let tabs = pad.div_ceil(TAB_WIDTH).max(1);
                    out.extend(std::iter::repeat_n('\t', tabs));
                }
            }
            out.push('\n');
        }
        out
    }

    /// Width of every terminated cell, per line, computed over contiguous blocks of lines that
    /// have a cell in that column.
    fn column_widths(&self) -> Vec<Vec<usize>> {
        let mut widths: Vec<Vec<usize>> = self
            .lines
            .iter()
            .map(|l| vec![0; l.len().saturating_sub(1)])
            .collect();
        let max_cols = self.lines.iter().map(|l| l.len()).max().unwrap_or(0);
        for col in 0..max_cols {
            let mut start = 0;
            while start < self.lines.len() {
                if self.lines[start].len() <= col + 1 {
                    start += 1;
                    continue;
                }
                let mut end = start;
                let mut width = 0;
                while end < self.lines.len() && self.lines[end].len() > col + 1 {
                    width = width.max(self.lines[end][col].chars().count() + PADDING);
                    end += 1;
                }
                let width = width.div_ceil(TAB_WIDTH) * TAB_WIDTH;
                for w in &mut widths[start..end] {
                    w[col] = width;
                }
                start = end;
            }
        }
        widths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go_tabwriter_with_tab_padding() {
        let mut tw = TabWriter::new();
        tw.row(["ID", "NAME", "SIZE"]);
        tw.row(["sha512-0123456789ab", "example.com/app:1.0", "2.0MiB"]);
        assert_eq!(
            tw.render(),
            "ID\t\t\tNAME\t\t\tSIZE\nsha512-0123456789ab\texample.com/app:1.0\t2.0MiB\n"
        );
    }

    #[test]
    fn a_cell_filling_its_column_still_gets_one_tab() {
        let mut tw = TabWriter::new();
        tw.row(["1234567", "x"]);
        tw.row(["12345678", "y"]);
        assert_eq!(tw.render(), "1234567\t\tx\n12345678\ty\n");
    }
}
