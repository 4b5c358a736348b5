//! Waiting for something that happens in the background (a status that
//! settles, a server that starts): one poll loop with a deadline, instead
//! of a sleep long enough for a slow machine.

use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] asks again.
const EVERY: Duration = Duration::from_millis(25);

/// Calls `probe` until it answers `Ok`, at most for `patience`; panics with
/// `what` and the last `Err` (what it saw instead) when time runs out.
pub async fn eventually<T, F, Fut>(what: &str, patience: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => {
                assert!(tokio::time::Instant::now() < deadline, "{what}: not within {patience:?}; {seen}");
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn it_returns_once_the_probe_succeeds() {
        let calls = AtomicU32::new(0);
        let got = eventually("the third call", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= 3 { Ok(n) } else { Err(format!("call {n}")) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never: not within")]
    async fn it_gives_up_naming_what_it_saw() {
        eventually("never", Duration::from_millis(60), || async { Err::<(), _>("still no".to_owned()) }).await;
    }
}
