//! PNG plots of a report, drawn with `plotters` and an embedded font
//! (DejaVu Sans, reduced to ASCII: `assets/DejaVuSans-subset.ttf`, license
//! beside it), so that no system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::SimError;
use crate::report::{SimReport, attack_rates};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
static REGISTER: Once = Once::new();
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 600);

fn font_ready() {
    REGISTER.call_once(|| {
        // The font is checked by a test; a failure here leaves text undrawn.
        let _ = register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Display>(e: E) -> SimError {
    SimError::Plot(e.to_string())
}

fn eur(minor: u64) -> f64 {
    minor as f64 / 100.0
}

/// Draw the report's plots into `dir` (created if missing): `exposure.png`
/// (exposure and guarantee loss per day), `detection_delay.png` (histogram of
/// detection delays), `loss_vs_limit.png` (each attacker's loss against its
/// balance at the attack and the limits). Returns the files written.
pub(crate) fn write_plots(report: &SimReport, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    font_ready();
    std::fs::create_dir_all(dir).map_err(|e| SimError::Io(e.to_string()))?;
    let files = vec![
        dir.join("exposure.png"),
        dir.join("detection_delay.png"),
        dir.join("loss_vs_limit.png"),
    ];
    exposure(report, &files[0])?;
    detection(report, &files[1])?;
    loss(report, &files[2])?;
    Ok(files)
}

fn caption(report: &SimReport, what: &str) -> String {
    format!(
        "{what} - {} wallets, {} days, seed {}",
        report.config.wallets, report.config.days, report.config.seed
    )
}

/// The second title line of every plot: the attacks and their rates.
fn attacks_line(report: &SimReport) -> String {
    format!("attacks: {}", attack_rates(&report.config))
}

/// A white canvas with the two title lines drawn; the chart goes below.
fn canvas<'a>(
    report: &SimReport,
    path: &'a Path,
    what: &str,
) -> Result<DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>, SimError> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(&caption(report, what), (FAMILY, 24))
        .map_err(err)?;
    root.titled(&attacks_line(report), (FAMILY, 16))
        .map_err(err)
}

/// A day-by-day series, starting at 0 on day 0.
pub(crate) type Series = Vec<(u32, u64)>;

/// The exposure plot's two series, in minor units: exposure at the end of each
/// day, and the cumulative guarantee loss at the end of each day followed by
/// one more point, on day `days + 1`, after the final settlement: the figure
/// the summary table reports (`guarantee_loss_minor`). Without that point the
/// plot ended below the table whenever the last syncs found double spends.
pub(crate) fn exposure_series(report: &SimReport) -> (Series, Series) {
    let daily = |f: fn(&crate::report::DayRecord) -> u64| -> Series {
        std::iter::once((0u32, 0))
            .chain(report.daily.iter().map(|d| (d.day, f(d))))
            .collect()
    };
    let exposure = daily(|d| d.exposure_minor);
    let mut guarantee = daily(|d| d.guarantee_loss_minor);
    let last_day = report.daily.last().map_or(0, |d| d.day);
    guarantee.push((last_day + 1, report.guarantee_loss_minor));
    (exposure, guarantee)
}

fn exposure(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let root = canvas(report, path, "Exposure over time")?;
    let (exposure, guarantee) = exposure_series(report);
    let final_x = guarantee.last().map_or(1, |p| p.0);
    let ymax = exposure
        .iter()
        .chain(guarantee.iter())
        .map(|p| p.1)
        .max()
        .unwrap_or(0)
        .max(100);
    let ymax = eur(ymax) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(0u32..final_x, 0f64..ymax)
        .map_err(err)?;
    let currency = report.currency.clone();
    chart
        .configure_mesh()
        .x_desc("day (the last point: after the final settlement)")
        .y_desc(currency.as_str())
        .x_label_formatter(&|x| {
            if *x == final_x {
                "final".to_string()
            } else {
                x.to_string()
            }
        })
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(err)?;
    let to_plot = |v: &Series| -> Vec<(u32, f64)> { v.iter().map(|&(d, m)| (d, eur(m))).collect() };
    chart
        .draw_series(LineSeries::new(to_plot(&exposure), RED.stroke_width(3)))
        .map_err(err)?
        .label("double-spent value not yet detected (exposure)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], RED.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(to_plot(&guarantee), BLUE.stroke_width(3)))
        .map_err(err)?
        .label("loss absorbed by the guarantee account (cumulative)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLUE.stroke_width(3)));
    let last = (final_x, eur(report.guarantee_loss_minor));
    chart
        .draw_series(std::iter::once(Circle::new(last, 5, BLUE.filled())))
        .map_err(err)?
        .label(format!(
            "after the final settlement: {:.2} {} (the table's guarantee loss)",
            last.1, report.currency
        ))
        .legend(|(x, y)| Circle::new((x + 12, y), 5, BLUE.filled()));
    legend(&mut chart)?;
    root.present().map_err(err)?;
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), SimError>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn detection(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let delays: Vec<u64> = report
        .double_spends
        .iter()
        .filter_map(|d| d.delay_s)
        .collect();
    let title = if delays.is_empty() {
        "Detection delay (no double spend in this run)"
    } else {
        "Detection delay of double spends"
    };
    let root = canvas(report, path, title)?;
    let max_h = delays
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .div_ceil(3600)
        .max(1);
    let bin_h = max_h.div_ceil(24).max(1);
    let bins = max_h.div_ceil(bin_h).max(1);
    let mut counts = vec![0u32; bins as usize];
    for d in &delays {
        let b = ((d / 3600) / bin_h).min(bins - 1);
        counts[b as usize] += 1;
    }
    let cmax = counts.iter().copied().max().unwrap_or(0).max(1);
    let ytop = cmax + cmax / 5 + 1;
    let xmax = bins * bin_h;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax as f64, 0u32..ytop)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("hours from the double spend to its detection at the issuer")
        .y_desc("double spends")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, c)| {
            let x0 = (i as u64 * bin_h) as f64;
            Rectangle::new(
                [(x0, 0), (x0 + bin_h as f64, *c)],
                RGBColor(60, 110, 200).filled(),
            )
        }))
        .map_err(err)?;
    if !delays.is_empty() {
        let d = &report.detection_delay_s;
        for (name, secs, color) in [("p50", d.p50, RGBColor(0, 150, 0)), ("p90", d.p90, RED)] {
            let h = secs as f64 / 3600.0;
            chart
                .draw_series(LineSeries::new(
                    vec![(h, 0), (h, ytop)],
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{name} = {h:.1} h"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// (balance at the attack, loss) of each attacker of `kind`, in major units.
fn attacker_points(report: &SimReport, kind: &str) -> Vec<(f64, f64)> {
    report
        .attackers
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| (eur(a.balance_at_attack_minor), eur(a.loss_minor)))
        .collect()
}

fn loss(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let limits = &report.limits;
    let clones = attacker_points(report, "clone");
    let rollbacks = attacker_points(report, "rollback");
    let title = if clones.is_empty() && rollbacks.is_empty() {
        "Loss per double spender vs limits (none in this run)"
    } else {
        "Loss per double spender vs limits"
    };
    let root = canvas(report, path, title)?;
    let xmax = eur(limits.holding_limit_minor) * 1.1;
    let ymax = eur(limits.loss_bound_per_wallet_minor).max(
        clones
            .iter()
            .chain(rollbacks.iter())
            .map(|p| p.1)
            .fold(0.0, f64::max),
    ) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..xmax.max(1.0), 0f64..ymax.max(1.0))
        .map_err(err)?;
    let cur = &report.currency;
    chart
        .configure_mesh()
        .x_desc(format!("offline balance when the attack started ({cur})"))
        .y_desc(format!("overspend covered: clawback + guarantee ({cur})"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(err)?;
    let hold = eur(limits.holding_limit_minor);
    let bound = eur(limits.loss_bound_per_wallet_minor);
    let orange = RGBColor(230, 140, 0);
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, hold), (xmax, hold)],
            orange.stroke_width(2),
        ))
        .map_err(err)?
        .label("holding limit")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], orange.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, bound), (xmax, bound)],
            RED.stroke_width(2),
        ))
        .map_err(err)?
        .label("bound: holding + offline spend limit")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 0.0), (xmax.min(ymax), xmax.min(ymax))],
            BLACK.mix(0.4).stroke_width(1),
        ))
        .map_err(err)?
        .label("loss = balance at attack")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.mix(0.4)));
    chart
        .draw_series(
            clones
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 5, BLUE.mix(0.7).filled())),
        )
        .map_err(err)?
        .label(format!("clone attacker ({})", clones.len()))
        .legend(|(x, y)| Circle::new((x + 12, y), 5, BLUE.mix(0.7).filled()));
    let green = RGBColor(0, 150, 0);
    chart
        .draw_series(
            rollbacks
                .iter()
                .map(|&(x, y)| TriangleMarker::new((x, y), 7, green.mix(0.8).filled())),
        )
        .map_err(err)?
        .label(format!("rollback attacker ({})", rollbacks.len()))
        .legend(move |(x, y)| TriangleMarker::new((x + 12, y), 7, green.mix(0.8).filled()));
    legend(&mut chart)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses() {
        assert!(register_font("offpay-test", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn exposure_plot_ends_on_the_tables_guarantee_loss() {
        let config = crate::SimConfig {
            wallets: 12,
            days: 2,
            seed: 3,
            attacks: vec![
                (crate::AttackKind::Clone, 0.2),
                (crate::AttackKind::Rollback, 0.2),
            ],
            ..crate::SimConfig::default()
        };
        let report = crate::run(config, |_| {}).unwrap();
        let (exposure, guarantee) = exposure_series(&report);
        assert_eq!(exposure.len(), report.daily.len() + 1);
        let last = *guarantee.last().unwrap();
        assert_eq!(last, (report.config.days + 1, report.guarantee_loss_minor));
        assert!(attacks_line(&report).contains("clone 0.2 per wallet-day"));
        let dir = tempfile::tempdir().unwrap();
        let files = write_plots(&report, dir.path()).unwrap();
        for f in files {
            assert!(std::fs::metadata(f).unwrap().len() > 10_000);
        }
    }
}
