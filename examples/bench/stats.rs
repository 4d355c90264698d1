//! Numbers: the shared clock of the fake and the client, percentiles, and readings of a
//! process (CPU time, resident memory) and of the machine (per-core busy time, load) from
//! `/proc`, plus the process-wide set-up the bench needs (CPU pinning, the open-files limit).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the bench's epoch: the fake stamps events with it and the client reads
/// arrivals with it (one process, one monotonic clock).
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted values (`q` in 0..=1); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summarize(mut values: Vec<f64>) -> Summary {
    values.sort_by(f64::total_cmp);
    Summary {
        n: values.len(),
        p50: percentile(&values, 0.50),
        p99: percentile(&values, 0.99),
        max: values.last().copied().unwrap_or(f64::NAN),
    }
}

/// The median of a few repetitions' figures.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Readings of one process from `/proc/PID`.
#[derive(Debug, Clone, Copy)]
pub struct Proc(pub u32);

impl Proc {
    /// User + system CPU seconds of all its threads so far (`/proc/PID/stat` fields 14 and 15).
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.0)) else {
            return f64::NAN;
        };
        // The command name (field 2) may hold spaces; the fields after it are plain.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // After ')' the first field is field 3 (state): utime is field 14, stime field 15.
        (ticks(11) + ticks(12)) as f64 / clock_ticks()
    }

    /// User and system CPU seconds separately.
    pub fn user_sys(&self) -> (f64, f64) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.0)) else {
            return (f64::NAN, f64::NAN);
        };
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (
            ticks(11) as f64 / clock_ticks(),
            ticks(12) as f64 / clock_ticks(),
        )
    }

    /// Context switches (voluntary + involuntary) of its threads alive now.
    pub fn context_switches(&self) -> f64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.0)) else {
            return f64::NAN;
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// A number from a `/proc/PID/status` line (`VmRSS`, `VmHWM` in kB, `Threads`).
    pub fn status_kb(&self, key: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::to_owned))
            })
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// Threads alive now.
    pub fn threads(&self) -> f64 {
        self.status_kb("Threads")
    }

    pub fn rss_kb(&self) -> f64 {
        self.status_kb("VmRSS")
    }

    pub fn hwm_kb(&self) -> f64 {
        self.status_kb("VmHWM")
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Busy (non-idle, non-iowait) CPU seconds of each core so far, from `/proc/stat`.
pub fn busy_per_core() -> Vec<f64> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle) as f64 / clock_ticks()
        })
        .collect()
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Pins the calling thread (and every thread it starts afterwards) to `core`.
pub fn pin_to(core: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard one (1,000 streams need about 3,000 sockets
/// here: client, gateway-side, and fake-side ends). Returns the new soft limit.
pub fn raise_nofile() -> std::io::Result<u64> {
    // SAFETY: getrlimit/setrlimit with a valid pointer.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(lim.rlim_cur as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
