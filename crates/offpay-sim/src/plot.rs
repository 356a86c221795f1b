//! PNG plots of a report, drawn with `plotters` and an embedded font
//! (DejaVu Sans, reduced to ASCII: `assets/DejaVuSans-subset.ttf`, license
//! beside it), so that no system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::SimError;
use crate::report::SimReport;

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

fn exposure(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let days = report.daily.len().max(1) as u32;
    let ymax = report
        .daily
        .iter()
        .map(|d| d.exposure_minor.max(d.guarantee_loss_minor))
        .max()
        .unwrap_or(0)
        .max(100);
    let ymax = eur(ymax) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption(report, "Exposure over time"), (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(0u32..days, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("day")
        .y_desc("EUR")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(err)?;
    let point = |f: fn(&crate::report::DayRecord) -> u64| -> Vec<(u32, f64)> {
        std::iter::once((0u32, 0.0))
            .chain(report.daily.iter().map(|d| (d.day, eur(f(d)))))
            .collect()
    };
    chart
        .draw_series(LineSeries::new(
            point(|d| d.exposure_minor),
            RED.stroke_width(3),
        ))
        .map_err(err)?
        .label("double-spent value not yet detected (exposure)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], RED.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(
            point(|d| d.guarantee_loss_minor),
            BLUE.stroke_width(3),
        ))
        .map_err(err)?
        .label("loss absorbed by the guarantee account (cumulative)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLUE.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn detection(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let delays: Vec<u64> = report
        .double_spends
        .iter()
        .filter_map(|d| d.delay_s)
        .collect();
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
    let title = if delays.is_empty() {
        caption(report, "Detection delay (no double spend in this run)")
    } else {
        caption(report, "Detection delay of double spends")
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..bins * bin_h, 0u32..cmax + cmax / 5 + 1)
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
            let x0 = i as u64 * bin_h;
            Rectangle::new([(x0, 0), (x0 + bin_h, *c)], RGBColor(60, 110, 200).filled())
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn loss(report: &SimReport, path: &Path) -> Result<(), SimError> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let limits = &report.limits;
    let pts: Vec<(f64, f64)> = report
        .attackers
        .iter()
        .filter(|a| a.kind == "clone" || a.kind == "rollback")
        .map(|a| (eur(a.balance_at_attack_minor), eur(a.loss_minor)))
        .collect();
    let xmax = eur(limits.holding_limit_minor) * 1.1;
    let ymax = eur(limits.loss_bound_per_wallet_minor)
        .max(pts.iter().map(|p| p.1).fold(0.0, f64::max))
        * 1.1;
    let title = if pts.is_empty() {
        caption(
            report,
            "Loss per double spender vs limits (none in this run)",
        )
    } else {
        caption(report, "Loss per double spender vs limits")
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..xmax.max(1.0), 0f64..ymax.max(1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offline balance when the attack started (EUR)")
        .y_desc("overspend covered: clawback + guarantee (EUR)")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(err)?;
    let hold = eur(limits.holding_limit_minor);
    let bound = eur(limits.loss_bound_per_wallet_minor);
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, hold), (xmax, hold)],
            RGBColor(230, 140, 0).stroke_width(2),
        ))
        .map_err(err)?
        .label("holding limit")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 24, y)],
                RGBColor(230, 140, 0).stroke_width(2),
            )
        });
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
            pts.iter()
                .map(|&(x, y)| Circle::new((x, y), 4, BLUE.mix(0.7).filled())),
        )
        .map_err(err)?
        .label("one attacker (clone or rollback)")
        .legend(|(x, y)| Circle::new((x + 12, y), 4, BLUE.mix(0.7).filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
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
}
