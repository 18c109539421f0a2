//! polars frames as assets: Arrow IPC or Parquet storage (schema preserved), LazyFrames
//! streamed into the file and scanned by consumers, DataFrame <-> LazyFrame inputs, metadata,
//! partitions, a store that changes format.

use orch::polars::prelude::*;
use orch::prelude::*;
use orch::storage::{SqliteStorage, Storage};
use orch::{AssetStatus, Instance};

#[asset(group = "frames")]
fn trips() -> Result<DataFrame, BoxError> {
    Ok(df!(
        "id" => [1i64, 2, 3, 4, 5, 6],
        "city" => ["oslo", "rome", "oslo", "lima", "rome", "oslo"],
        "km" => [3.5f64, 12.0, 7.25, 1.0, 30.5, 2.0],
    )?)
}

/// Lazy: a plan over its upstream. Over the frame in memory, orch collects it once; over the
/// upstream's file, orch runs it with the streaming engine into its own file.
#[asset(group = "frames")]
fn long_trips(trips: &LazyFrame) -> LazyFrame {
    trips.clone().filter(col("km").gt(lit(5.0)))
}

/// Takes the lazy upstream as a DataFrame: orch collects the scan of its file.
#[asset(group = "frames")]
fn km_by_city(long_trips: &DataFrame) -> Result<DataFrame, BoxError> {
    Ok(long_trips
        .clone()
        .lazy()
        .group_by([col("city")])
        .agg([col("km").sum()])
        .sort(["city"], Default::default())
        .collect()?)
}

/// What a consumer of the lazy asset receives: a plan that scans the stored file.
#[asset(group = "frames")]
fn long_trip_plan(long_trips: &LazyFrame) -> Result<String, BoxError> {
    Ok(long_trips
        .clone()
        .filter(col("city").eq(lit("rome")))
        .select([col("id")])
        .describe_optimized_plan()?)
}

/// Frames under other names: polars' `PolarsResult` and an alias of `DataFrame`.
type Cities = DataFrame;

#[asset(group = "aliased")]
fn aliased_raw() -> PolarsResult<DataFrame> {
    df!("city" => ["oslo", "rome"])
}

#[asset(group = "aliased")]
fn aliased_cities(aliased_raw: &DataFrame) -> Cities {
    aliased_raw.clone()
}

#[test]
fn aliases_of_result_and_of_frames_are_stored_as_the_types_they_stand_for() {
    let dir = tempfile::tempdir().unwrap();
    let result = Materialize::select("group:aliased")
        .instance(&Instance::open(dir.path()).unwrap())
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    // Both are frame files (a serde codec would have refused a frame at compile time).
    for key in ["aliased_raw", "aliased_cities"] {
        let path = dir.path().join(format!("storage/{key}.arrow"));
        let back = IpcReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap();
        assert_eq!(back.height(), 2, "{key}");
    }
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

#[test]
fn frames_are_stored_as_arrow_ipc_and_flow_between_eager_and_lazy_assets() {
    let dir = tempfile::tempdir().unwrap();
    let result = Materialize::select("group:frames")
        .instance(&Instance::open(dir.path()).unwrap())
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    let storage = dir.path().join("storage");
    for name in ["trips", "long_trips", "km_by_city"] {
        assert!(storage.join(format!("{name}.arrow")).exists(), "{name}");
    }
    let by_city = result.output::<km_by_city>();
    assert_eq!(column_f64(by_city, "km"), [7.25, 42.5]);

    // The lazy asset's plan reads only `trips`, a frame in memory: it is collected once, and
    // its consumers start from the result, not from its file.
    let plan = result.output::<long_trip_plan>();
    assert!(plan.contains("DF ["), "{plan}");
    assert!(!plan.contains("SCAN"), "{plan}");

    // With `trips` read back from its file, the plan scans a file: the streaming engine runs
    // it into `long_trips.arrow`, and its consumers scan that, the filter and the projection
    // reaching the scan.
    let rescanned = Materialize::select("long_trips or long_trip_plan")
        .instance(&Instance::open(dir.path()).unwrap())
        .run()
        .unwrap();
    assert!(rescanned.success(), "{rescanned:?}");
    let plan = rescanned.output::<long_trip_plan>();
    assert!(plan.contains("Ipc SCAN ["), "{plan}");
    assert!(plan.contains("long_trips.arrow"), "{plan}");
    assert!(plan.contains("PROJECT 2/3 COLUMNS"), "{plan}");
    assert!(
        plan.contains(r#"SELECTION: col("city") == "rome""#),
        "{plan}"
    );

    // Metadata: rows, schema and a preview, recorded with the materialization.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let history = store.materializations("long_trips", 1).unwrap();
    let meta: std::collections::HashMap<_, _> = history[0]
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    assert_eq!(meta["rows"], "3");
    assert_eq!(meta["schema"], "id: i64, city: str, km: f64");
    assert!(meta["preview"].contains("rome"), "{}", meta["preview"]);

    // A later run loads the stored frame: schema and values survive the round trip.
    let again = Materialize::select("km_by_city")
        .instance(&Instance::open(dir.path()).unwrap())
        .run()
        .unwrap();
    assert!(again.success(), "{again:?}");
    assert!(matches!(
        again.outcome("long_trips").unwrap().status,
        AssetStatus::Loaded
    ));
    assert_eq!(again.output::<km_by_city>(), by_city);
    let stored = LazyFrame::scan_ipc(
        PlRefPath::new(storage.join("trips.arrow").to_str().unwrap()),
        Default::default(),
        Default::default(),
    )
    .unwrap()
    .collect()
    .unwrap();
    assert_eq!(&stored, result.output::<trips>());
    assert_eq!(
        stored
            .schema()
            .iter_fields()
            .map(|f| f.dtype().clone())
            .collect::<Vec<_>>(),
        [DataType::Int64, DataType::String, DataType::Float64]
    );
}

/// 2 MiB in memory: written in the background while its consumers run.
#[asset(group = "big")]
fn big_numbers() -> Result<DataFrame, BoxError> {
    Ok(df!("n" => (0..262_144i64).collect::<Vec<_>>())?)
}

/// A lazy consumer of an in-memory frame plans over the frame, not over its file.
#[asset(group = "big")]
fn big_doubled(big_numbers: &LazyFrame) -> Result<DataFrame, BoxError> {
    let plan = big_numbers.describe_plan()?;
    if plan.contains("SCAN") && !plan.contains("DF [") {
        return Err(format!("scans the stored file instead of the frame in memory: {plan}").into());
    }
    Ok(big_numbers
        .clone()
        .select([(col("n") * lit(2)).alias("n")])
        .collect()?)
}

#[asset(group = "big")]
fn big_total(big_doubled: &DataFrame) -> Result<i64, BoxError> {
    Ok(big_doubled.column("n")?.i64()?.sum().unwrap_or(0))
}

#[test]
fn large_frames_are_written_in_the_background_and_recorded_after_their_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let result = Materialize::select("group:big")
        .instance(&Instance::open(dir.path()).unwrap())
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(*result.output::<big_total>(), 262_143 * 262_144);

    // Each materialization is recorded after its upstream's and names its stored version.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let events = store.events(result.run_id().as_str()).unwrap();
    let order: Vec<String> = events
        .iter()
        .filter(|e| e.kind == orch::storage::EventKind::Materialized)
        .map(|e| e.asset.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(order, ["big_numbers", "big_doubled", "big_total"]);
    let latest = |asset: &str| store.materializations(asset, 1).unwrap().remove(0);
    let (numbers, doubled) = (latest("big_numbers"), latest("big_doubled"));
    assert!(numbers.data_version.is_some());
    assert_eq!(
        doubled.inputs,
        [("big_numbers".to_owned(), numbers.data_version.clone())]
    );
    assert_eq!(
        latest("big_total").inputs,
        [("big_doubled".to_owned(), doubled.data_version)]
    );
    // The files are whole, and a later run reads them.
    let again = Materialize::select("big_total")
        .instance(&Instance::open(dir.path()).unwrap())
        .run()
        .unwrap();
    assert!(again.success(), "{again:?}");
    assert_eq!(again.output::<big_total>(), result.output::<big_total>());
}

#[test]
fn a_frame_written_aside_takes_its_place_only_when_published() {
    use orch::io::{FsIoManager, IoManager, OutputContext, StagedOutput};
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let io = FsIoManager::new(storage.clone());
    let graph = orch::definitions().unwrap();
    let node = graph.node(graph.id_of(&"big_numbers".parse().unwrap()).unwrap());
    let run_id = orch::RunId::new();
    let ctx = OutputContext {
        key: &node.key,
        run_id: &run_id,
        partition: None,
        output_type: node.def.output_type(),
        codec: node.def.storage_codec(),
    };
    let frame = |n: i64| -> orch::io::Value { std::sync::Arc::new(df!("n" => [n; 4]).unwrap()) };
    let file = storage.join("big_numbers.arrow");
    let stored = io.handle_output(&ctx, &frame(1)).unwrap();
    let first = std::fs::read(&file).unwrap();
    let files = || std::fs::read_dir(&storage).unwrap().count();

    // Dropped unpublished: discarded, the stored file untouched.
    let staged: Box<dyn StagedOutput> = io.stage_output(&ctx, &frame(2)).unwrap().unwrap();
    assert_eq!(files(), 2, "written beside the stored file");
    drop(staged);
    assert_eq!(files(), 1);
    assert_eq!(std::fs::read(&file).unwrap(), first);

    // Published: in place, with the version a one-step store gives the same frame.
    let staged = io.stage_output(&ctx, &frame(2)).unwrap().unwrap();
    let published = staged.publish().unwrap();
    assert_eq!(files(), 1);
    assert_ne!(published.data_version, stored.data_version);
    assert_eq!(
        published.data_version,
        io.handle_output(&ctx, &frame(2)).unwrap().data_version
    );
    // A plan that scans a file is not staged: it is collected into its file and scanned from
    // there. A plan that is nothing but a frame in memory (a settled one) is staged as that
    // frame.
    let scan = LazyFrame::scan_ipc(
        PlRefPath::new(file.to_str().unwrap()),
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let lazy: orch::io::Value = std::sync::Arc::new(scan);
    assert!(io.stage_output(&ctx, &lazy).is_none());
    let held: orch::io::Value = std::sync::Arc::new(df!("n" => [3i64; 4]).unwrap().lazy());
    let staged = io.stage_output(&ctx, &held).unwrap().unwrap();
    assert_eq!(
        staged.publish().unwrap().data_version,
        io.handle_output(&ctx, &frame(3)).unwrap().data_version
    );
}

#[test]
fn a_damaged_frame_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let rec = || Instance::open(dir.path()).unwrap();
    assert!(
        Materialize::select("trips")
            .instance(&rec())
            .run()
            .unwrap()
            .success()
    );
    let path = dir.path().join("storage/trips.arrow");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Materialize::select("long_trips")
        .instance(&rec())
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.contains("the stored output of asset `trips`"), "{err}");
    assert!(err.contains("trips.arrow"), "{err}");
    assert!(
        err.ends_with("materialize `trips` again to repair it"),
        "{err}"
    );
}

#[asset(group = "daily_frames", partitions = daily("2024-01-01").end("2024-01-08"))]
fn daily_rides(ctx: &AssetContext) -> Result<DataFrame, BoxError> {
    let day = ctx.partition_key().ok_or("daily")?.to_owned();
    Ok(df!("day" => [day.clone(), day], "n" => [1i64, 2])?)
}

#[test]
fn partitioned_frames_are_one_file_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    for day in ["2024-01-02", "2024-01-03"] {
        let r = Materialize::select("daily_rides")
            .partition(day)
            .instance(&Instance::open(dir.path()).unwrap())
            .run()
            .unwrap();
        assert!(r.success(), "{r:?}");
    }
    let storage = dir.path().join("storage/daily_rides");
    assert!(storage.join("2024-01-02.arrow").exists());
    assert!(storage.join("2024-01-03.arrow").exists());
}

/// Unpartitioned: reads every partition of `daily_rides`, concatenated in order.
#[asset(group = "daily_frames")]
fn rides_total(daily_rides: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(daily_rides
        .clone()
        .select([
            col("n").sum().alias("n"),
            col("day").first().alias("first_day"),
            len().alias("rows"),
        ])
        .collect()?)
}

#[test]
fn an_unpartitioned_frame_asset_reads_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let rec = || Instance::open(dir.path()).unwrap();
    // Before the partitions exist: refused, naming what is missing.
    let err = Materialize::select("rides_total")
        .instance(&rec())
        .run()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "asset `rides_total` reads every partition of `daily_rides`, but 7 of its 7 partitions are not materialized (`2024-01-01`, `2024-01-02`, `2024-01-03`, `2024-01-04`, `2024-01-05`, ...): backfill them first"
    );
    // Inside a one-partition run: refused, with what to do instead.
    let err = Materialize::select("daily_rides+")
        .partition("2024-01-02")
        .instance(&rec())
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("asset `rides_total` reads every partition of `daily_rides`, so it cannot run inside a one-partition run"), "{err}");
    for day in 1..=7 {
        let r = Materialize::select("daily_rides")
            .partition(format!("2024-01-{day:02}"))
            .instance(&rec())
            .run()
            .unwrap();
        assert!(r.success());
    }
    let r = Materialize::select("rides_total")
        .instance(&rec())
        .run()
        .unwrap();
    assert!(r.success(), "{r:?}");
    let total = r.output::<rides_total>();
    assert_eq!(total.column("n").unwrap().i64().unwrap().get(0), Some(21));
    assert_eq!(
        total.column("rows").unwrap().u32().unwrap().get(0),
        Some(14)
    );
    assert_eq!(
        total.column("first_day").unwrap().str().unwrap().get(0),
        Some("2024-01-01")
    );
}

#[test]
fn frames_are_arrow_ipc_unless_the_app_says_parquet_which_is_uncompressed_unless_it_says_otherwise()
{
    use orch::io::{FrameFormat, ParquetCompression};
    let codec = |path: std::path::PathBuf| {
        let mut reader = ParquetReader::new(std::fs::File::open(path).unwrap());
        let meta = reader.get_metadata().unwrap();
        format!(
            "{:?}",
            meta.row_groups[0].parquet_columns()[0].compression()
        )
    };
    let parquet = || orch::App::new().frame_format(FrameFormat::Parquet);
    for (app, expect) in [
        (orch::App::new(), None),
        (parquet(), Some("Uncompressed")),
        (
            parquet().parquet_compression(ParquetCompression::Lz4),
            Some("Lz4Raw"),
        ),
        (
            parquet().parquet_compression(ParquetCompression::Zstd(9)),
            Some("Zstd"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = orch::Config::default();
        config.set_home(dir.path());
        let instance = app.instance(config).unwrap();
        let r = Materialize::select("trips")
            .instance(&instance)
            .run()
            .unwrap();
        assert!(r.success(), "{r:?}");
        let (arrow, parquet) = (
            dir.path().join("storage/trips.arrow"),
            dir.path().join("storage/trips.parquet"),
        );
        match expect {
            None => assert!(arrow.exists() && !parquet.exists()),
            Some(expect) => {
                assert!(!arrow.exists());
                assert_eq!(codec(parquet), expect);
            }
        }
    }
}

#[test]
fn a_store_keeps_loading_and_replaces_its_frames_when_the_format_changes() {
    use orch::io::FrameFormat;
    let dir = tempfile::tempdir().unwrap();
    let instance = |format: FrameFormat| {
        let mut config = orch::Config::default();
        config.set_home(dir.path());
        config.set_frame_format(format);
        Instance::builder().config(config).build().unwrap()
    };
    let storage = dir.path().join("storage");
    let files = |name: &str| {
        ["arrow", "parquet"]
            .into_iter()
            .filter(|ext| storage.join(format!("{name}.{ext}")).exists())
            .collect::<Vec<_>>()
    };
    let first = Materialize::select("trips")
        .instance(&instance(FrameFormat::Parquet))
        .run()
        .unwrap();
    assert!(first.success(), "{first:?}");
    assert_eq!(files("trips"), ["parquet"]);

    // Now set to Arrow IPC: the Parquet file still loads...
    let arrow = instance(FrameFormat::ArrowIpc);
    let r = Materialize::select("long_trips or km_by_city")
        .instance(&arrow)
        .run()
        .unwrap();
    assert!(r.success(), "{r:?}");
    assert!(matches!(
        r.outcome("trips").unwrap().status,
        AssetStatus::Loaded
    ));
    assert_eq!(column_f64(r.output::<km_by_city>(), "km"), [7.25, 42.5]);
    assert_eq!(files("long_trips"), ["arrow"]);
    // ...until the asset is stored again, in the new format, which replaces it.
    let r = Materialize::select("trips").instance(&arrow).run().unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(files("trips"), ["arrow"]);
    assert_eq!(r.output::<trips>(), first.output::<trips>());

    // Of two files left by a write killed between its rename and the removal, the newer loads.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let other = df!("id" => [9i64], "city" => ["lima"], "km" => [99.0f64]).unwrap();
    ParquetWriter::new(std::fs::File::create(storage.join("trips.parquet")).unwrap())
        .finish(&mut other.clone())
        .unwrap();
    let r = Materialize::select("long_trips")
        .instance(&arrow)
        .run()
        .unwrap();
    assert!(r.success(), "{r:?}");
    let long = r.output::<long_trips>().clone().collect().unwrap();
    assert_eq!(column_f64(&long, "km"), [99.0]);
}

/// The last 3 days of `daily_rides` (fewer at the start), concatenated.
#[asset(group = "windows", partitions = daily("2024-01-01").end("2024-01-08"))]
fn rides_3d(#[partitions(last = 3)] daily_rides: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(daily_rides
        .clone()
        .select([col("day").unique_stable().alias("days")])
        .collect()?)
}

/// The day before's rides (any output type maps by offset; here a frame).
#[asset(group = "windows", partitions = daily("2024-01-01").end("2024-01-08"))]
fn rides_yesterday(#[partitions(offset = -1)] daily_rides: &DataFrame) -> Result<String, BoxError> {
    Ok(daily_rides
        .column("day")?
        .str()?
        .get(0)
        .unwrap_or_default()
        .to_owned())
}

fn days(df: &DataFrame) -> Vec<String> {
    let days = df.column("days").unwrap().str().unwrap();
    (0..days.len())
        .map(|i| days.get(i).unwrap_or_default().to_owned())
        .collect()
}

/// 1M rows a day (more than write-behind's 1 MiB), read back through a mapping below.
#[asset(group = "big_days", partitions = daily("2024-01-01").end("2024-01-08"))]
fn big_day(ctx: &AssetContext) -> Result<DataFrame, BoxError> {
    let day = ctx.partition_key().ok_or("daily")?.to_owned();
    let rows = 1 << 20;
    Ok(df!("day" => vec![day; rows], "n" => (0..rows as i64).collect::<Vec<_>>())?)
}

/// Rows per day over this day and the one before: this run's day is read from storage.
#[asset(group = "big_days", partitions = daily("2024-01-01").end("2024-01-08"))]
fn big_two_days(#[partitions(last = 2)] big_day: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(big_day
        .clone()
        .group_by([col("day")])
        .agg([len().alias("rows")])
        .sort(["day"], Default::default())
        .collect()?)
}

#[test]
fn a_partition_read_back_through_a_mapping_is_stored_before_its_reader_starts() {
    let dir = tempfile::tempdir().unwrap();
    for day in ["2024-01-01", "2024-01-02"] {
        let r = Materialize::select("group:big_days")
            .partition(day)
            .instance(&Instance::open(dir.path()).unwrap())
            .run()
            .unwrap();
        assert!(r.success(), "{r:?}");
        let counts = r.output::<big_two_days>();
        let days = counts.column("day").unwrap().str().unwrap();
        let last = days.get(days.len() - 1);
        assert_eq!(last, Some(day), "{counts}");

        let rows = counts.column("rows").unwrap().u32().unwrap();
        assert!(rows.into_no_null_iter().all(|n| n == 1 << 20), "{counts}");
    }
}

#[test]
fn partition_mappings_read_the_window_or_the_partition_before() {
    let dir = tempfile::tempdir().unwrap();
    let run = |select: &str, day: &str| {
        Materialize::select(select)
            .partition(day)
            .instance(&Instance::open(dir.path()).unwrap())
            .run()
            .unwrap()
    };
    // The first day: the window is clipped to the start; there is no day before.
    let first = run("daily_rides or group:windows", "2024-01-01");
    assert_eq!(days(first.output::<rides_3d>()), ["2024-01-01"]);
    let AssetStatus::Failed(why) = &first.outcome("rides_yesterday").unwrap().status else {
        panic!("{first:?}")
    };
    assert!(
        why.to_string()
            .contains("`2024-01-01` has no partition at offset -1"),
        "{why}"
    );
    // Day 3 in one run with its upstream: the window holds the partition written in this run
    // and the stored ones before it. Day 2 is missing: an error naming it.
    let gap = run("daily_rides or group:windows", "2024-01-03");
    let AssetStatus::Failed(why) = &gap.outcome("rides_3d").unwrap().status else {
        panic!("{gap:?}")
    };
    assert!(why.to_string().contains("2024-01-02"), "{why}");
    run("daily_rides", "2024-01-02");
    let third = run("group:windows", "2024-01-03");
    assert!(third.success(), "{third:?}");
    assert_eq!(
        days(third.output::<rides_3d>()),
        ["2024-01-01", "2024-01-02", "2024-01-03"]
    );
    assert_eq!(third.output::<rides_yesterday>(), "2024-01-02");
    // The upstream is not in the run and its own day 4 does not exist: nothing loads it.
    let fourth = run("rides_yesterday", "2024-01-04");
    assert!(fourth.success(), "{fourth:?}");
    assert_eq!(fourth.output::<rides_yesterday>(), "2024-01-03");
    // A mapping reads stored partitions: an unrecorded run says so.
    let unrecorded = Materialize::select("rides_3d")
        .partition("2024-01-03")
        .inject::<daily_rides>(DataFrame::empty())
        .run()
        .unwrap();
    let AssetStatus::Failed(why) = &unrecorded.outcome("rides_3d").unwrap().status else {
        panic!("{unrecorded:?}")
    };
    assert!(why.to_string().contains("this run stores nothing"), "{why}");
}

static RANGED_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A range of days in one call, split by its `day` text column. Jan 3 has no rows; a key
/// `2024-01-09` in the range's data (when asked for) lands outside it.
#[asset(
    group = "ranged",
    partitions = daily("2024-01-01").end("2024-01-08"),
    partition_by = "day"
)]
fn ranged_rides(ctx: &AssetContext) -> Result<DataFrame, BoxError> {
    RANGED_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let range = ctx.partition_key_range().ok_or("partitioned")?;
    let window = ctx.partition_time_window().ok_or("daily")?;
    assert_eq!(window.start.date().to_string(), range.start);
    let mut days: Vec<String> = ctx
        .partition_keys()
        .iter()
        .filter(|d| *d != "2024-01-03")
        .flat_map(|d| [d.clone(), d.clone()])
        .collect();
    if range.end == "2024-01-07" {
        days.push("2024-01-09".to_owned());
    }
    let n: Vec<i64> = (1..=days.len() as i64).collect();
    // The same days as dates (days since 1970-01-01).
    let epoch: orch::partitions::jiff::civil::Date = "1970-01-01".parse()?;
    let since: Vec<i32> = days
        .iter()
        .map(|d| {
            let day: orch::partitions::jiff::civil::Date = d.parse().expect("a date");
            (day - epoch).get_days()
        })
        .collect();
    let date = Series::new("date".into(), since).cast(&DataType::Date)?;
    let mut df = df!("day" => days, "n" => n)?;
    df.with_column(date.into())?;
    Ok(df)
}

/// The same range, lazily, split by its Date column.
#[asset(
    group = "ranged",
    partitions = daily("2024-01-01").end("2024-01-08"),
    partition_by = "date"
)]
fn ranged_dates(ranged_rides: &LazyFrame) -> LazyFrame {
    ranged_rides.clone().select([col("date"), col("n")])
}

#[test]
fn a_range_of_partitions_runs_once_and_is_stored_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let rec = || Instance::open(dir.path()).unwrap();
    let days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"];
    let r = Materialize::select("group:ranged")
        .partition_range(days)
        .instance(&rec())
        .run()
        .unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(RANGED_CALLS.load(std::sync::atomic::Ordering::SeqCst), 1);
    let rows = |asset: &str, day: &str| {
        let path = dir.path().join(format!("storage/{asset}/{day}.arrow"));
        IpcReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap()
    };
    for day in days {
        let expected = if day == "2024-01-03" { 0 } else { 2 };
        assert_eq!(rows("ranged_rides", day).height(), expected, "{day}");
        let dates = rows("ranged_dates", day);
        assert_eq!(dates.height(), expected, "{day}");
        assert_eq!(dates.column("date").unwrap().dtype(), &DataType::Date);
    }
    // Recorded per partition: each is materialized, with the range's run.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let mut statuses: Vec<String> = store
        .partition_statuses("ranged_dates")
        .unwrap()
        .into_iter()
        .map(|s| s.partition)
        .collect();
    statuses.sort();
    assert_eq!(statuses, days);
    // Each partition recorded with its own rows, file and data version.
    let recorded = store.materializations("ranged_rides", 10).unwrap();
    assert_eq!(recorded.len(), 4);
    for m in &recorded {
        let day = m.partition.clone().unwrap();
        let rows = if day == "2024-01-03" { 0u64 } else { 2 };
        assert!(
            m.metadata.contains(&("rows".to_owned(), rows.into())),
            "{m:?}"
        );
        let path = dir.path().join(format!("storage/ranged_rides/{day}.arrow"));
        let path = ("path".to_owned(), path.display().to_string().into());
        assert!(m.metadata.contains(&path), "{m:?}");
    }
    let versions: std::collections::HashSet<_> =
        recorded.iter().map(|m| m.data_version.clone()).collect();
    assert_eq!(versions.len(), 4, "{versions:?}");
    // The run's outcome carries the range's summary.
    let summary = &r.outcome("ranged_rides").unwrap().metadata;
    assert!(
        summary.contains(&("range rows".to_owned(), 6i64.into())),
        "{summary:?}"
    );
    assert!(
        summary.contains(&(
            "range".to_owned(),
            "2024-01-02..2024-01-05 (4 partitions)".into()
        )),
        "{summary:?}"
    );

    // One partition of the downstream alone reads what the range run stored.
    let one = Materialize::select("ranged_dates")
        .partition("2024-01-04")
        .instance(&rec())
        .run()
        .unwrap();
    assert!(one.success(), "{one:?}");
    assert_eq!(
        one.output::<ranged_dates>()
            .clone()
            .collect()
            .unwrap()
            .height(),
        2
    );

    // A row outside the range fails the asset, naming the value.
    let outside = Materialize::select("ranged_rides")
        .partition_range(["2024-01-06", "2024-01-07"])
        .instance(&rec())
        .run()
        .unwrap();
    let AssetStatus::Failed(why) = &outside.outcome("ranged_rides").unwrap().status else {
        panic!("{outside:?}")
    };
    assert!(
        why.to_string().contains("has `day` = `2024-01-09`, which is not among the run's partitions (`2024-01-06` to `2024-01-07`)"),
        "{why}"
    );
    // A range is consecutive keys, and is recorded.
    let err = Materialize::select("ranged_rides")
        .partition_range(["2024-01-02", "2024-01-04"])
        .instance(&rec())
        .run()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "a run over a range of partitions must list consecutive partitions in order, but `2024-01-04` follows `2024-01-02`"
    );
    let err = Materialize::select("ranged_rides")
        .partition_range(days)
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.contains("record the run"), "{err}");
    // Assets without `partition_by` run one partition per run.
    let err = Materialize::select("daily_rides")
        .partition_range(days)
        .instance(&rec())
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("asset `daily_rides` cannot run over a range of partitions in one run: it has no `partition_by"),
        "{err}"
    );
}
