//! Result columns built row by row into polars columns, widening as values arrive: a column
//! of integers that meets a float becomes floats, anything that meets text becomes text.

use std::borrow::Cow;

use polars::prelude::*;

/// One value read from a row; text borrows from the row when it can.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Bool(bool),
}

/// What a column holds so far. Text goes straight into a polars string builder, so a text
/// cell costs a copy into the column's buffer, not an allocation of its own.
enum Values {
    /// Only NULLs yet (this many).
    Nulls(usize),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(StringChunkedBuilder),
    Bool(Vec<Option<bool>>),
}

impl Values {
    fn kind(&self) -> &'static str {
        match self {
            Values::Nulls(_) => "nulls",
            Values::Int(_) => "integers",
            Values::Float(_) => "floats",
            Values::Text(_) => "text",
            Values::Bool(_) => "booleans",
        }
    }
}

/// A column being built.
pub(super) struct Column {
    name: PlSmallStr,
    values: Values,
}

impl Column {
    /// An empty column; `hint` (a declared type such as `INTEGER` or `int8`) types it even if
    /// no row arrives.
    pub(super) fn new(name: String, hint: Option<Kind>) -> Self {
        let name = PlSmallStr::from(name);
        let values = match hint {
            Some(Kind::Int) => Values::Int(Vec::new()),
            Some(Kind::Float) => Values::Float(Vec::new()),
            Some(Kind::Text) => Values::Text(StringChunkedBuilder::new(name.clone(), 0)),
            Some(Kind::Bool) => Values::Bool(Vec::new()),
            None => Values::Nulls(0),
        };
        Column { name, values }
    }

    pub(super) fn push(&mut self, cell: Cell<'_>) {
        // Widen first if the cell does not fit.
        let widened = match (&mut self.values, &cell) {
            (Values::Nulls(n), Cell::Int(_)) => Some(Values::Int(vec![None; *n])),
            (Values::Nulls(n), Cell::Float(_)) => Some(Values::Float(vec![None; *n])),
            (Values::Nulls(_), Cell::Text(_)) => Some(self.texts()),
            (Values::Nulls(n), Cell::Bool(_)) => Some(Values::Bool(vec![None; *n])),
            (Values::Int(v), Cell::Float(_)) => Some(Values::Float(
                v.iter().map(|x| x.map(|i| i as f64)).collect(),
            )),
            (Values::Int(_) | Values::Float(_) | Values::Bool(_), Cell::Text(_))
            | (Values::Float(_), Cell::Bool(_))
            | (Values::Bool(_), Cell::Int(_) | Cell::Float(_)) => Some(self.texts()),
            _ => None,
        };
        if let Some(values) = widened {
            self.values = values;
        }
        match (&mut self.values, cell) {
            (Values::Nulls(n), Cell::Null) => *n += 1,
            (Values::Int(v), Cell::Null) => v.push(None),
            (Values::Float(v), Cell::Null) => v.push(None),
            (Values::Text(v), Cell::Null) => v.append_null(),
            (Values::Bool(v), Cell::Null) => v.push(None),
            (Values::Int(v), Cell::Int(i)) => v.push(Some(i)),
            (Values::Float(v), Cell::Int(i)) => v.push(Some(i as f64)),
            (Values::Float(v), Cell::Float(f)) => v.push(Some(f)),
            (Values::Bool(v), Cell::Bool(b)) => v.push(Some(b)),
            (Values::Text(v), Cell::Text(s)) => v.append_value(s),
            (Values::Text(v), Cell::Int(i)) => v.append_value(i.to_string()),
            (Values::Text(v), Cell::Float(f)) => v.append_value(f.to_string()),
            (Values::Text(v), Cell::Bool(b)) => v.append_value(b.to_string()),
            // Every other pair was widened above.
            (values, cell) => unreachable!("{} after widening cannot take {cell:?}", values.kind()),
        }
    }

    /// The values so far as a text column (for widening to text).
    fn texts(&self) -> Values {
        let mut out = StringChunkedBuilder::new(self.name.clone(), 0);
        fn fill<T: ToString>(out: &mut StringChunkedBuilder, v: &[Option<T>]) {
            for x in v {
                out.append_option(x.as_ref().map(ToString::to_string));
            }
        }
        match &self.values {
            Values::Nulls(n) => (0..*n).for_each(|_| out.append_null()),
            Values::Int(v) => fill(&mut out, v),
            Values::Float(v) => fill(&mut out, v),
            Values::Bool(v) => fill(&mut out, v),
            Values::Text(_) => unreachable!("a text column is never widened"),
        }
        Values::Text(out)
    }

    /// The finished column; the builder is left empty (same type) for the next chunk.
    pub(super) fn take(&mut self) -> polars::prelude::Column {
        let name = self.name.clone();
        let series = match &mut self.values {
            // A column of NULLs only: text, the most general.
            Values::Nulls(n) => {
                let n = std::mem::take(n);
                Series::new(name, vec![None::<String>; n])
            }
            Values::Int(v) => Series::new(name, std::mem::take(v)),
            Values::Float(v) => Series::new(name, std::mem::take(v)),
            Values::Text(v) => std::mem::replace(v, StringChunkedBuilder::new(name, 0))
                .finish()
                .into_series(),
            Values::Bool(v) => Series::new(name, std::mem::take(v)),
        };
        series.into()
    }
}

/// A column type hint from a declared type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Int,
    Float,
    Text,
    Bool,
}

/// SQLite's type affinity rules, applied to a declared column type (`INTEGER`, `VARCHAR(20)`,
/// `DOUBLE`, `BOOLEAN`...).
pub(super) fn sqlite_kind(declared: &str) -> Option<Kind> {
    let t = declared.to_ascii_uppercase();
    if t.contains("BOOL") {
        Some(Kind::Bool)
    } else if t.contains("INT") {
        Some(Kind::Int)
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Some(Kind::Text)
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Some(Kind::Float)
    } else {
        // NUMERIC, DATE and the rest: typed by the values that come.
        None
    }
}

/// Builds a DataFrame from finished columns.
fn frame(columns: &mut [Column]) -> PolarsResult<DataFrame> {
    let cols: Vec<polars::prelude::Column> = columns.iter_mut().map(Column::take).collect();
    DataFrame::new_infer_height(cols)
}

/// Rows read one by one, handed on as DataFrames of at most `rows` rows. An empty result is
/// one empty frame (with the columns), so a query always says what it would have returned.
pub(super) struct Chunker<'a> {
    /// The columns being filled: push one cell to each, then call [`Chunker::end_row`].
    pub(super) columns: Vec<Column>,
    rows: usize,
    in_chunk: usize,
    sent_any: bool,
    each: &'a mut dyn FnMut(DataFrame) -> bool,
    database: String,
}

impl<'a> Chunker<'a> {
    pub(super) fn new(
        columns: Vec<Column>,
        rows: usize,
        each: &'a mut dyn FnMut(DataFrame) -> bool,
        database: String,
    ) -> Self {
        Chunker {
            columns,
            rows,
            in_chunk: 0,
            sent_any: false,
            each,
            database,
        }
    }

    fn send(&mut self) -> Result<bool, super::SqlError> {
        let df = frame(&mut self.columns).map_err(|e| super::SqlError::Frame {
            database: self.database.clone(),
            message: e.to_string(),
        })?;
        self.in_chunk = 0;
        self.sent_any = true;
        Ok((self.each)(df))
    }

    /// A row is complete; returns whether the consumer wants more.
    pub(super) fn end_row(&mut self) -> Result<bool, super::SqlError> {
        self.in_chunk += 1;
        if self.in_chunk == self.rows {
            return self.send();
        }
        Ok(true)
    }

    /// Sends the last, partial chunk (or the one empty frame of an empty result).
    pub(super) fn finish(mut self) -> Result<(), super::SqlError> {
        if self.in_chunk > 0 || !self.sent_any {
            self.send()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_widen_as_values_arrive() {
        let mut ints = Column::new("n".to_owned(), None);
        for c in [Cell::Null, Cell::Int(2), Cell::Float(2.5)] {
            ints.push(c);
        }
        let s = ints.take();
        assert_eq!(s.dtype(), &DataType::Float64);
        assert_eq!(s.null_count(), 1);
        let mut mixed = Column::new("m".to_owned(), Some(Kind::Int));
        for c in [Cell::Int(1), Cell::Text("x".into()), Cell::Bool(true)] {
            mixed.push(c);
        }
        let s = mixed.take();
        assert_eq!(s.dtype(), &DataType::String);
        let s = s.str().unwrap();
        assert_eq!(s.get(0), Some("1"));
        assert_eq!(s.get(2), Some("true"));
        // Taken columns keep their type for the next chunk, even with no rows.
        assert_eq!(mixed.take().dtype(), &DataType::String);
    }

    #[test]
    fn declared_types_follow_sqlite_affinity() {
        assert_eq!(sqlite_kind("BIGINT"), Some(Kind::Int));
        assert_eq!(sqlite_kind("varchar(20)"), Some(Kind::Text));
        assert_eq!(sqlite_kind("DOUBLE PRECISION"), Some(Kind::Float));
        assert_eq!(sqlite_kind("DATE"), None);
    }
}
