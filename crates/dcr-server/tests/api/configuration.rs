//! The real `dcr` binary and its configuration: `DCR_` variables that are not keys (as
//! Kubernetes injects for a Service named `dcr`) are ignored with a warning, and values that
//! cannot work are refused at load time, naming the key.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// `dcr --config dir/dcr.toml`, with no `DCR_*` variable of the test environment but `env`.
fn dcr_in(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcr"));
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("DCR_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .arg("--config")
        .arg(dir.join("dcr.toml"));
    cmd
}

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("dcr.toml"), text).unwrap();
}

fn check_config(dir: &Path, env: &[(&str, &str)]) -> Output {
    dcr_in(dir, env).arg("check-config").output().unwrap()
}

/// A `dcr serve` process, killed when dropped.
struct Serving {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, env: &[(&str, &str)]) -> Serving {
    let mut child = dcr_in(dir, env)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                let _ = tx.send(addr);
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30));
    let mut serving = Serving {
        child,
        addr: String::new(),
        log,
    };
    match addr {
        Ok(addr) => serving.addr = addr,
        Err(_) => {
            let _ = serving.child.kill();
            let _ = serving.child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("dcr serve did not start:\n{}", serving.log.lock().unwrap());
        }
    }
    serving
}

const KUBERNETES: &[(&str, &str)] = &[
    ("DCR_PORT", "tcp://10.0.0.7:8080"),
    ("DCR_SERVICE_HOST", "10.0.0.7"),
    ("DCR_PORT_8080_TCP_ADDR", "10.0.0.7"),
];

#[tokio::test]
async fn kubernetes_service_variables_do_not_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "listen = \"127.0.0.1:0\"\n[storage]\nurl = \"memory:\"\n",
    );
    let mut env = KUBERNETES.to_vec();
    // Real keys are still overridden, including members of map-typed keys.
    env.push(("DCR_REGISTRATION__PATH", "/register"));
    env.push((
        "DCR_DISCOVERY__AUTHORIZATION_ENDPOINT",
        "https://as.example.com/authorize",
    ));
    let server = serve(dir.path(), &env);
    let http = reqwest::Client::new();
    let res = http
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let discovery: Value = http
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            server.addr
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        "http://127.0.0.1:8080/register"
    );
    assert_eq!(
        discovery["authorization_endpoint"],
        "https://as.example.com/authorize"
    );
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log.lock().unwrap().clone();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("DCR_PORT")).collect();
    assert_eq!(warnings.len(), 1, "one warning line:\n{log}");
    for (name, value) in KUBERNETES {
        assert!(warnings[0].contains(name), "{name} not named:\n{log}");
        assert!(!log.contains(value), "a value was logged:\n{log}");
    }
    assert!(warnings[0].contains("WARN"), "{log}");
}

#[test]
fn an_unknown_key_in_the_file_still_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "[storage]\nurl = \"memory:\"\npool = 3\n");
    let out = check_config(dir.path(), KUBERNETES);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pool"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_refuses_a_registration_path_or_issuer_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[registration]\npath = \"/{*x}\"\n", "registration.path"),
        ("[registration]\npath = \"/{x}\"\n", "registration.path"),
        ("[registration]\npath = \"/reg?x\"\n", "registration.path"),
        ("issuer = \"http://id.example.com\"\n", "issuer"),
        ("issuer = \"https://id example.com\"\n", "issuer"),
        ("issuer = \"https:///\"\n", "issuer"),
    ] {
        write_config(dir.path(), &format!("{text}[storage]\nurl = \"memory:\"\n"));
        let out = check_config(dir.path(), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {text}");
        assert!(stderr.contains(key), "{key} not named for {text}: {stderr}");
    }
    // Plain http on a non-loopback host only when asked for explicitly.
    write_config(
        dir.path(),
        "issuer = \"http://id.example.com\"\nallow_insecure_issuer = true\n[storage]\nurl = \"memory:\"\n",
    );
    let out = check_config(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("allow_insecure_issuer"),
        "no warning: {stderr}"
    );
}
