//! Aligned tables for people: a heading row, columns as wide as their
//! widest cell, numbers aligned right.

/// A table built row by row, printed by [`Out::table`](super::Out::table).
pub(crate) struct Table {
    headings: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
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
        }
    }

    /// Adds a row (one cell per column; missing cells print empty).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, the headings passed through `heading` (bold on a
    /// terminal). Cells are measured in characters.
    pub(crate) fn render(&self, heading: impl Fn(&str) -> String) -> String {
        let mut widths: Vec<usize> = self.headings.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let headings: Vec<String> = self.headings.iter().map(|h| h.to_string()).collect();
        self.line(&mut out, &widths, &headings, Some(&heading));
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
}
