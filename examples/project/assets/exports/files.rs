//! Export the statistics as CSV.

use orch::prelude::*;

use crate::assets::analytics::stats::{AgeStats, user_stats};

/// The statistics as CSV text, also written under the system's temp directory.
#[asset(group = "exports")]
pub async fn stats_csv(ctx: &AssetContext, user_stats: &AgeStats) -> std::io::Result<String> {
    let csv = format!(
        "count,mean_age,max_age\n{},{:.2},{}\n",
        user_stats.count, user_stats.mean_age, user_stats.max_age
    );
    let path = std::env::temp_dir().join("orch-project-stats.csv");
    std::fs::write(&path, &csv)?;
    ctx.add_output_metadata("path", path.display().to_string());
    Ok(csv)
}
