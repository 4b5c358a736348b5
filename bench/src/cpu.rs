//! CPU time from `/proc`: of a process, and of the server half of this
//! process (everything but the load generator's own threads), so a figure
//! can say what one operation cost the server.

use std::time::Duration;

/// The name (prefix) of the load generator's threads in `http` mode.
pub const LOAD_THREADS: &str = "load";

/// User + system CPU time of `pid`, its exited threads included.
pub fn of_process(pid: u32) -> Duration {
    ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU time this process spent outside the load generator's threads.
pub fn of_server_here() -> Duration {
    of_process(std::process::id()).saturating_sub(of_load_threads())
}

/// CPU time of this process's threads named [`LOAD_THREADS`]; they live as
/// long as the load runtime, so none of their time is lost to an exit.
fn of_load_threads() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.starts_with(LOAD_THREADS))
        })
        .map(|task| ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default()))
        .sum()
}

/// utime + stime of a `/proc/…/stat` line (Linux clock ticks of 1/100 s).
fn ticks(stat: &str) -> Duration {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((field(11) + field(12)) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_a_command_name_with_spaces() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 3 0";
        assert_eq!(ticks(stat), Duration::from_millis(2800));
    }

    #[test]
    fn this_process_has_spent_some_cpu() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(of_process(std::process::id()) > Duration::ZERO);
        assert!(of_server_here() <= of_process(std::process::id()));
    }
}
