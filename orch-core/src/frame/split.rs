//! Splitting the output of a run over a range of partitions into one frame per partition
//! (`partition_by`): by the values of a text column holding the keys, or of a date or datetime
//! column falling in their time windows.

use std::sync::Arc;

use polars::prelude::*;

use super::polars_frames::collected;
use crate::asset::{BoxError, Value};

/// Where each row goes: the index of its key among `keys`, from the values of `column`.
fn row_keys(
    column: &Series,
    partitions: &crate::partitions::Partitions,
    keys: &[String],
) -> Result<Vec<u32>, BoxError> {
    let name = column.name().to_string();
    let outside = |row: usize, value: String| -> BoxError {
        format!(
            "row {row} has `{name}` = {value}, which is not among the run's partitions (`{}` to `{}`)",
            keys.first().map_or("", String::as_str),
            keys.last().map_or("", String::as_str)
        )
        .into()
    };
    let mut out = Vec::with_capacity(column.len());
    match column.dtype() {
        DataType::Date | DataType::Datetime(_, _) => {
            // Window boundaries in milliseconds: as civil times for dates and naive
            // datetimes (read in the partitions' time zone), as instants for zoned ones.
            let zoned = matches!(column.dtype(), DataType::Datetime(_, Some(_)));
            // A date has no time of day: it can only pick a window of a day or longer.
            if column.dtype() == &DataType::Date
                && let Some(w) = keys.first().and_then(|k| partitions.time_window(k))
                && (&w.end - &w.start).get_hours() < 24
                && w.end.date() == w.start.date()
            {
                return Err(format!(
                    "column `{name}` holds dates, which cannot tell the hours of {} partitions apart; split by a datetime or by the key text",
                    partitions.describe()
                )
                .into());
            }
            let mut bounds = Vec::with_capacity(keys.len() + 1);
            for (i, key) in keys.iter().enumerate() {
                let window = partitions.time_window(key).ok_or_else(|| -> BoxError {
                    format!(
                        "column `{name}` is a {} but the partitions are not time windows; split by a text column holding the keys",
                        column.dtype()
                    )
                    .into()
                })?;
                let ms = |z: &jiff::Zoned| -> Result<i64, BoxError> {
                    Ok(if zoned {
                        z.timestamp().as_millisecond()
                    } else {
                        z.datetime()
                            .to_zoned(jiff::tz::TimeZone::UTC)?
                            .timestamp()
                            .as_millisecond()
                    })
                };
                bounds.push(ms(&window.start)?);
                if i + 1 == keys.len() {
                    bounds.push(ms(&window.end)?);
                }
            }
            let millis: Vec<Option<i64>> = match column.dtype() {
                DataType::Date => column
                    .date()?
                    .physical()
                    .downcast_iter()
                    .flat_map(|a| a.iter().map(|v| v.map(|d| i64::from(*d) * 86_400_000)))
                    .collect(),
                DataType::Datetime(unit, _) => {
                    let per_ms = match unit {
                        TimeUnit::Milliseconds => 1,
                        TimeUnit::Microseconds => 1_000,
                        TimeUnit::Nanoseconds => 1_000_000,
                    };
                    column
                        .datetime()?
                        .physical()
                        .downcast_iter()
                        .flat_map(|a| a.iter().map(move |v| v.map(|t| t.div_euclid(per_ms))))
                        .collect()
                }
                _ => unreachable!("matched above"),
            };
            for (row, value) in millis.into_iter().enumerate() {
                let at = value
                    .map(|v| bounds.partition_point(|&b| b <= v))
                    .filter(|&p| p >= 1 && p < bounds.len())
                    .ok_or_else(|| {
                        outside(
                            row,
                            column
                                .get(row)
                                .map_or_else(|_| "?".to_owned(), |v| v.to_string()),
                        )
                    })?;
                out.push((at - 1) as u32);
            }
        }
        _ => {
            let text = column.cast(&DataType::String)?;
            let index: std::collections::HashMap<&str, u32> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i as u32))
                .collect();
            let mut row = 0;
            for array in text.str()?.downcast_iter() {
                for value in array.iter() {
                    let at = value.and_then(|v| index.get(v)).ok_or_else(|| {
                        outside(row, value.map_or("null".to_owned(), |v| format!("`{v}`")))
                    })?;
                    out.push(*at);
                    row += 1;
                }
            }
        }
    }
    Ok(out)
}

pub(super) fn split(
    value: &Value,
    column: &str,
    partitions: &crate::partitions::Partitions,
    keys: &[String],
) -> Result<(Value, Vec<(String, Value)>), BoxError> {
    let df = collected(value)?;
    let series = df
        .column(column)
        .map_err(|_| -> BoxError {
            format!(
                "the output has no column `{column}` to split it into partitions by (`partition_by`); its columns are {}",
                df.get_column_names()
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into()
        })?
        .as_materialized_series()
        .clone();
    let at = row_keys(&series, partitions, keys)?;
    let mut starts = vec![0usize; keys.len() + 1];
    for &k in &at {
        starts[k as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    // Rows already in key order (a query ordered by date) are sliced as they are;
    // otherwise a counting sort groups them by key, in their order within each key.
    let sorted = if at.windows(2).all(|w| w[0] <= w[1]) {
        df.clone()
    } else {
        let mut next = starts.clone();
        let mut order = vec![0 as IdxSize; at.len()];
        for (row, &k) in at.iter().enumerate() {
            order[next[k as usize]] = row as IdxSize;
            next[k as usize] += 1;
        }
        df.take(&IdxCa::from_vec(PlSmallStr::EMPTY, order))?
    };
    let parts = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let part = sorted.slice(starts[i] as i64, starts[i + 1] - starts[i]);
            (key.clone(), Arc::new(part) as Value)
        })
        .collect();
    Ok((Arc::new(df), parts))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use polars::prelude::*;

    use crate::asset::Value;

    #[test]
    fn a_range_splits_by_time_window_in_the_partitions_time_zone() {
        use crate::partitions::{PartitionsDefinition, daily};
        let paris = PartitionsDefinition::from(daily("2024-01-01").timezone("Europe/Paris"))
            .resolve()
            .unwrap();
        let keys = ["2024-01-01".to_owned(), "2024-01-02".to_owned()];
        let split = super::split;
        // 2024-01-01T23:30 and 11:30, naive: read as Paris times, both on Jan 1. (Zoned
        // datetimes compare as instants; orch's polars build has no time zones to make one.)
        let ms = 1_704_151_800_000i64;
        let at = |_naive: bool| {
            let s = Series::new("at".into(), [ms, ms - 3_600_000 * 12]);
            let s = s
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .unwrap();
            Arc::new(DataFrame::new_infer_height(vec![s.into()]).unwrap()) as Value
        };
        let heights = |value: &Value| -> Vec<usize> {
            let (_, parts) = split(value, "at", &paris, &keys).unwrap();
            parts
                .iter()
                .map(|(_, v)| v.downcast_ref::<DataFrame>().unwrap().height())
                .collect()
        };
        assert_eq!(heights(&at(false)), [2, 0]);
        // Outside the range: an error naming the row.
        let late = Arc::new(
            DataFrame::new_infer_height(vec![
                Series::new("at".into(), [ms + 2 * 86_400_000])
                    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                    .unwrap()
                    .into(),
            ])
            .unwrap(),
        ) as Value;
        let err = split(&late, "at", &paris, &keys).unwrap_err();
        assert!(err.to_string().starts_with("row 0 has `at` = "), "{err}");
        // Dates cannot pick hours.
        let hours = PartitionsDefinition::from(crate::partitions::hourly("2024-01-01"))
            .resolve()
            .unwrap();
        let dates = Arc::new(
            DataFrame::new_infer_height(vec![
                Series::new("d".into(), [19_723i32])
                    .cast(&DataType::Date)
                    .unwrap()
                    .into(),
            ])
            .unwrap(),
        ) as Value;
        let hour_keys = hours.keys(jiff::Timestamp::now(), &[])[..2].to_vec();
        let err = split(&dates, "d", &hours, &hour_keys).unwrap_err();
        assert!(err.to_string().contains("cannot tell the hours"), "{err}");
        let err = split(&at(false), "nope", &paris, &keys).unwrap_err();
        assert!(err.to_string().contains("no column `nope`"), "{err}");
    }
}
