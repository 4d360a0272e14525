//! Aligned tables for people: a heading row, columns as wide as their
//! widest cell, numbers aligned right.

/// A table built row by row, printed by [`Out::table`](super::Out::table).
pub(crate) struct Table {
    headings: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
    /// Each column's least width: a chunk after the first keeps the
    /// columns of the chunks before it.
    min_widths: Vec<usize>,
    /// Whether the heading row is printed (only in the first chunk).
    heading: bool,
}

impl Table {
    /// A table with these columns; a heading starting with `>` is aligned
    /// right (the `>` is not shown).
    pub(crate) fn new(headings: &[&'static str]) -> Table {
        Table {
            headings: headings
                .iter()
                .map(|h| h.strip_prefix('>').unwrap_or(h))
                .collect(),
            right: headings.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
            min_widths: Vec::new(),
            heading: true,
        }
    }

    /// The next chunk of a table too long to hold whole (a dump of a
    /// whole log): the same columns, no heading row, each column at least
    /// as wide as in the chunks printed before it, so the columns stay
    /// aligned unless a later row is wider.
    pub(crate) fn next_chunk(&self) -> Table {
        Table {
            headings: self.headings.clone(),
            right: self.right.clone(),
            rows: Vec::new(),
            min_widths: self.widths(),
            heading: false,
        }
    }

    /// Rows added so far.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Each column's width: its widest cell, heading or least width.
    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headings.iter().map(|h| h.chars().count()).collect();
        for (width, least) in widths.iter_mut().zip(&self.min_widths) {
            *width = (*width).max(*least);
        }
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        widths
    }

    /// Adds a row (one cell per column; missing cells print empty).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, the headings passed through `heading` (bold on a
    /// terminal). Cells are measured in characters.
    pub(crate) fn render(&self, heading: impl Fn(&str) -> String) -> String {
        let widths = self.widths();
        let mut out = String::new();
        if self.heading {
            let headings: Vec<String> = self.headings.iter().map(|h| h.to_string()).collect();
            self.line(&mut out, &widths, &headings, Some(&heading));
        }
        for row in &self.rows {
            self.line(&mut out, &widths, row, None);
        }
        out
    }

    fn line(
        &self,
        out: &mut String,
        widths: &[usize],
        cells: &[String],
        paint: Option<&dyn Fn(&str) -> String>,
    ) {
        let last = widths.len().saturating_sub(1);
        for (i, width) in widths.iter().enumerate() {
            let cell = cells.get(i).map_or("", String::as_str);
            let pad = width.saturating_sub(cell.chars().count());
            let shown = paint.map_or_else(|| cell.to_string(), |p| p(cell));
            let right = self.right.get(i).copied().unwrap_or(false);
            if right {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&shown);
            } else {
                out.push_str(&shown);
                if i != last {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i != last {
                out.push_str("  ");
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_go_right() {
        let mut t = Table::new(&["name", ">events"]);
        t.row(vec!["orders".into(), "7".into()]);
        t.row(vec!["a".into(), "1,024".into()]);
        assert_eq!(
            t.render(|h| h.to_string()),
            "name    events\norders       7\na        1,024\n"
        );
    }

    #[test]
    fn a_next_chunk_keeps_the_columns_and_drops_the_heading() {
        let mut t = Table::new(&["name", ">events"]);
        t.row(vec!["orders".into(), "7".into()]);
        let mut next = t.next_chunk();
        next.row(vec!["a".into(), "1".into()]);
        assert_eq!(next.render(|h| h.to_string()), "a            1\n");
    }
}
