//! The web client in headless Chromium (`tests/browser/chat.mjs`, driven by
//! playwright-core): two people sign up, chat both ways with typing and read
//! receipts, share an image, lose and regain the network without gaps or
//! duplicates, watch presence change, and use rooms. Screenshots of the main
//! screens land in `$CARGO_TARGET_DIR/browser-screenshots/<run>/`. The same
//! script runs against two gateway processes in `distributed.rs`.
//! `make test-deps` installs Chromium and playwright-core.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::{Backend, TestApp};
use crate::on_every_backend;

/// One browser at a time: two Chromiums on two cores would starve the suites.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TIMEOUT: Duration = Duration::from_secs(300);

fn screenshot_dir(label: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| chatterbox_testkit::workspace_root().join("target"), PathBuf::from);
    target.join("browser-screenshots").join(label)
}

/// Runs the browser test: Alice's browser on `alice_url`, Bob's on
/// `bob_url` (another gateway, or the same); screenshots under `label`.
pub async fn chat_in_chromium(alice_url: &str, bob_url: &str, label: &str) {
    let scripts = chatterbox_testkit::workspace_root().join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in tests/browser: run `make test-deps`"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(std::path::Path::new(&chromium).exists(), "{chromium} is missing: run `make test-deps`");
    let _turn = ONE_BROWSER.lock().await;
    let shots = screenshot_dir(label);
    let mut child = tokio::process::Command::new("node")
        .arg("chat.mjs")
        .current_dir(&scripts)
        .env("CHATTERBOX_URL", alice_url)
        .env("BOB_URL", bob_url)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let status = tokio::time::timeout(TIMEOUT, child.wait()).await.expect("the browser test ends in time").unwrap();
    assert!(status.success(), "the browser test failed (its output is above; screenshots in {})", shots.display());
    eprintln!("web client screenshots: {}", shots.display());
}

/// Access tokens of 15 s: the page must renew them silently, several times,
/// without its socket dropping.
pub const SHORT_TOKEN_SECS: u64 = 15;

async fn two_people_chat_in_chromium(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.access_token_ttl_secs = SHORT_TOKEN_SECS).await;
    let label = match backend {
        Backend::Embedded => "embedded",
        Backend::MongoRedis => "mongodb-redis-s3",
    };
    chat_in_chromium(&app.url(""), &app.url(""), label).await;
}

on_every_backend!(two_people_chat_in_chromium);
