//! Plots drawn on the server as SVG (no JavaScript, no chart library): incidents over time as
//! stacked bars, and the MTTR of each recovery with its running median.

use maud::{html, Markup, PreEscaped};

use super::format;
use crate::console::derive::{Incident, Outcome};
use crate::console::stats::{percentile, DAY_US};

const W: f64 = 600.0;
const H: f64 = 190.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

const COLOURS: [(&str, &str); 4] =
    [("failover", "#1a57c8"), ("restart", "#137333"), ("node returned", "#9aa0a6"), ("open", "#c5221f")];

fn class_of(i: &Incident) -> usize {
    match i.outcome {
        Some(Outcome::Failover) => 0,
        Some(Outcome::Restart) => 1,
        Some(Outcome::NodeReturned) => 2,
        None => 3,
    }
}

/// Incidents per bucket (a day for a 30-day window, about a 30th of longer ones), by outcome.
pub fn incidents_over_time(incidents: &[Incident], now_us: i64, days: i64) -> Markup {
    let bucket_days = (days / 30).max(1);
    let buckets = (days / bucket_days).max(1) as usize;
    let start = now_us - buckets as i64 * bucket_days * DAY_US;
    let mut counts = vec![[0u32; 4]; buckets];
    for i in incidents {
        if i.detected_us < start {
            continue;
        }
        let b = (((i.detected_us - start) / (bucket_days * DAY_US)) as usize).min(buckets - 1);
        counts[b][class_of(i)] += 1;
    }
    let max = counts.iter().map(|c| c.iter().sum::<u32>()).max().unwrap_or(0).max(1);
    let top = nice_ceiling(max as f64);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / buckets as f64;
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let mut svg = String::new();
    svg.push_str(&axes(top, |v| format!("{v:.0}"), &y));
    for (b, c) in counts.iter().enumerate() {
        let mut base = 0.0;
        for (k, n) in c.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let x = LEFT + b as f64 * bw + bw * 0.12;
            let (y1, y0) = (y(base + *n as f64), y(base));
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                (bw * 0.76).max(1.0),
                (y0 - y1).max(0.5),
                COLOURS[k].1,
                format::date(start + b as i64 * bucket_days * DAY_US),
                COLOURS[k].0,
                n
            ));
            base += *n as f64;
        }
    }
    svg.push_str(&time_labels(start, now_us));
    let title =
        if bucket_days == 1 { "Incidents per day".to_string() } else { format!("Incidents per {bucket_days} days") };
    figure(&title, &svg, legend(&COLOURS))
}

/// Each recovery's MTTR at its detection time, and the median of the last five as a line.
pub fn mttr_trend(incidents: &[Incident], now_us: i64, days: i64) -> Markup {
    let start = now_us - days * DAY_US;
    let mut points: Vec<(i64, i64, usize)> = incidents
        .iter()
        .filter(|i| i.detected_us >= start)
        .filter_map(|i| i.mttr_ms().map(|m| (i.detected_us, m, class_of(i))))
        .collect();
    points.sort_unstable();
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1000) as f64 / 1000.0;
    let top = nice_ceiling(max);
    let x = |t: i64| LEFT + (t - start) as f64 / (now_us - start).max(1) as f64 * plot_w;
    let y = |s: f64| TOP + plot_h - s / top * plot_h;
    let mut svg = String::new();
    svg.push_str(&axes(top, |v| format!("{v} s"), &y));
    let mut line = Vec::new();
    for (k, p) in points.iter().enumerate() {
        let lo = k.saturating_sub(4);
        let mut window: Vec<i64> = points[lo..=k].iter().map(|p| p.1).collect();
        window.sort_unstable();
        let median = percentile(&window, 50).unwrap_or(p.1);
        line.push(format!("{:.1},{:.1}", x(p.0), y(median as f64 / 1000.0)));
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\" fill-opacity=\".75\"><title>{}: {} ({})</title></circle>",
            x(p.0),
            y(p.1 as f64 / 1000.0),
            COLOURS[p.2].1,
            format::time(p.0),
            format::duration_ms(p.1),
            COLOURS[p.2].0
        ));
    }
    if line.len() > 1 {
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#202124\" stroke-width=\"1.5\"/>",
            line.join(" ")
        ));
    }
    if points.is_empty() {
        svg.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">no recovery in this window</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        ));
    }
    svg.push_str(&time_labels(start, now_us));
    figure("MTTR of each recovery, running median of five", &svg, legend(&COLOURS[..2]))
}

fn figure(title: &str, svg: &str, legend: Markup) -> Markup {
    html! {
        div.plot {
            h3 { (title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) {
                (PreEscaped(svg))
            }
            (legend)
        }
    }
}

fn legend(items: &[(&str, &str)]) -> Markup {
    html! {
        div.legend {
            @for (name, colour) in items {
                span { i style={ "background:" (colour) } {} (name) }
            }
        }
    }
}

/// Horizontal grid lines and y labels at 0, ½ and the top.
fn axes(top: f64, label: impl Fn(f64) -> String, y: &dyn Fn(f64) -> f64) -> String {
    let mut s = String::new();
    for v in [0.0, top / 2.0, top] {
        let yy = y(v);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{:.0}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#dadce0\"/>\
             <text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 5.0,
            yy + 4.0,
            label(v)
        ));
    }
    s
}

fn time_labels(start: i64, end: i64) -> String {
    let plot_w = W - LEFT - RIGHT;
    (0..=4)
        .map(|k| {
            let t = start + (end - start) * k / 4;
            let anchor = match k {
                0 => "start",
                4 => "end",
                _ => "middle",
            };
            format!(
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"{anchor}\">{}</text>",
                LEFT + plot_w * k as f64 / 4.0,
                H - 6.0,
                &format::date(t)[5..]
            )
        })
        .collect()
}

/// 1, 2, 5 × 10^n at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.max(1e-9).log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

#[cfg(test)]
mod tests {
    #[test]
    fn axis_tops_are_round() {
        assert_eq!(super::nice_ceiling(7.0), 10.0);
        assert_eq!(super::nice_ceiling(13.0), 20.0);
        assert_eq!(super::nice_ceiling(1.0), 1.0);
        assert_eq!(super::nice_ceiling(42.0), 50.0);
    }
}
