//! The README's walkthrough ("Five minutes with the CLI"), run as written
//! against a real server, so the README cannot drift: every console block
//! after a `<!-- walkthrough -->` marker is run command by command (`$ `
//! lines, through `sh`, in a fresh home directory), and the lines under each
//! command are compared with what it printed (stdout and stderr), line by
//! line.
//!
//! What the test does beyond "as written", each visible here:
//! * `<name>` in the README is a placeholder: in output it matches what the
//!   run printed there and remembers it; in a command it is replaced by the
//!   value remembered. A line that is only a placeholder stands for one or
//!   more lines (a PEM body).
//! * The ports: OFFPAY_LISTEN and OFFPAY_SERVER (which the README documents)
//!   point at a free port, and "127.0.0.1:8080" and "127.0.0.1:7000" in the
//!   README are read as two free ports.
//! * OFFPAY_PIN and OFFPAY_KDF=test are set (the README documents
//!   OFFPAY_PIN; the fast key derivation keeps the test quick), and the one
//!   line OFFPAY_KDF=test adds to `wallet create` is left out.
//! * A block after `<!-- walkthrough: second terminal -->` runs in the
//!   background; its output is compared when it ends, after the next block.
//! * A command ending in ` &` (the server) runs in the background; its
//!   output lines are read as they come. It is stopped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::PIN;

struct Step {
    command: String,
    expected: Vec<String>,
}

struct Block {
    second_terminal: bool,
    steps: Vec<Step>,
}

fn walkthrough(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().peekable();
    while let Some(line) = lines.next() {
        let second_terminal = match line.trim() {
            "<!-- walkthrough -->" => false,
            "<!-- walkthrough: second terminal -->" => true,
            _ => continue,
        };
        assert_eq!(
            lines.next().map(str::trim),
            Some("```console"),
            "a console block follows the marker"
        );
        let mut steps: Vec<Step> = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            if let Some(c) = l.strip_prefix("$ ") {
                steps.push(Step {
                    command: c.to_string(),
                    expected: Vec::new(),
                });
            } else {
                steps
                    .last_mut()
                    .expect("output after a command")
                    .expected
                    .push(l.to_string());
            }
        }
        blocks.push(Block {
            second_terminal,
            steps,
        });
    }
    blocks
}

/// Split an expected line into literal text and placeholders.
fn pieces(line: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else { break };
        let name = &rest[i + 1..i + j];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ')
        {
            out.push((false, rest[..i + 1].to_string()));
            rest = &rest[i + 1..];
            continue;
        }
        out.push((false, rest[..i].to_string()));
        out.push((true, name.to_string()));
        rest = &rest[i + j + 1..];
    }
    out.push((false, rest.to_string()));
    out.retain(|(p, t)| *p || !t.is_empty());
    out
}

/// Whether `actual` matches `expected`, binding its placeholders.
fn matches(expected: &str, actual: &str, vars: &mut HashMap<String, String>) -> bool {
    let ps = pieces(expected);
    let mut rest = actual;
    let mut bound = Vec::new();
    for (k, (is_var, text)) in ps.iter().enumerate() {
        if !*is_var {
            let Some(r) = rest.strip_prefix(text.as_str()) else {
                return false;
            };
            rest = r;
            continue;
        }
        if let Some(v) = vars.get(text) {
            let Some(r) = rest.strip_prefix(v.as_str()) else {
                return false;
            };
            rest = r;
            continue;
        }
        let value = match ps.get(k + 1) {
            Some((false, next)) => match rest.find(next.as_str()) {
                Some(i) => &rest[..i],
                None => return false,
            },
            _ => rest,
        };
        if value.is_empty() {
            return false;
        }
        bound.push((text.clone(), value.to_string()));
        rest = &rest[value.len()..];
    }
    if !rest.is_empty() {
        return false;
    }
    for (k, v) in bound {
        // Generic placeholders (dates, sizes) may differ between lines.
        if k.contains('-') {
            vars.insert(k, v);
        }
    }
    true
}

fn check_output(cmd: &str, expected: &[String], actual: &str, vars: &mut HashMap<String, String>) {
    let actual: Vec<&str> = actual
        .lines()
        .filter(|l| !l.contains("OFFPAY_KDF=test"))
        .collect();
    let mut a = 0;
    let mut e = 0;
    while e < expected.len() {
        let exp = &expected[e];
        let whole = pieces(exp);
        if whole.len() == 1 && whole[0].0 && !vars.contains_key(&whole[0].1) {
            // One or more lines, up to the next expected one.
            let next = expected.get(e + 1);
            let start = a;
            while a < actual.len() && next.is_none_or(|n| !matches(n, actual[a], &mut vars.clone()))
            {
                a += 1;
            }
            assert!(
                a > start,
                "`{cmd}`: nothing printed for {exp:?}:\n{}",
                actual.join("\n")
            );
            e += 1;
            continue;
        }
        assert!(
            a < actual.len(),
            "`{cmd}`: the README shows {exp:?}, the command printed only:\n{}",
            actual.join("\n")
        );
        assert!(
            matches(exp, actual[a], vars),
            "`{cmd}`: the README shows\n  {exp}\nthe command printed\n  {}\n(all of it:\n{})",
            actual[a],
            actual.join("\n")
        );
        a += 1;
        e += 1;
    }
    assert_eq!(
        a,
        actual.len(),
        "`{cmd}` printed lines the README leaves out:\n{}",
        actual[a..].join("\n")
    );
}

/// Background processes of the walkthrough, stopped however the test ends
/// (a failing assertion included), each by its own handle.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Shell {
    home: PathBuf,
    cwd_file: PathBuf,
    bin_dir: PathBuf,
    server_port: u16,
    ports: Vec<(String, String)>,
}

impl Shell {
    fn cwd(&self) -> PathBuf {
        std::fs::read_to_string(&self.cwd_file)
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or_else(|_| self.home.clone())
    }

    fn localize(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (from, to) in &self.ports {
            t = t.replace(from.as_str(), to);
        }
        t
    }

    fn command(&self, line: &str) -> Command {
        let script = format!("cd \"$1\" || exit 97; {line}\nrc=$?; pwd > \"$2\"; exit $rc");
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(self.cwd())
            .arg(&self.cwd_file)
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.bin_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("HOME", &self.home)
            .env("OFFPAY_PIN", PIN)
            .env("OFFPAY_KDF", "test")
            .env("OFFPAY_LISTEN", format!("127.0.0.1:{}", self.server_port))
            .env(
                "OFFPAY_SERVER",
                format!("http://127.0.0.1:{}", self.server_port),
            )
            .stdin(Stdio::null());
        c
    }
}

fn substitute(cmd: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    for (is_var, text) in pieces(cmd) {
        if is_var {
            let v = vars
                .get(&text)
                .unwrap_or_else(|| panic!("`{cmd}` uses <{text}> before any output showed it"));
            out.push_str(v);
        } else {
            out.push_str(&text);
        }
    }
    out
}

#[test]
#[expect(clippy::too_many_lines)] // lint-exception: the walkthrough runs as the README tells it, top to bottom
fn the_readme_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let blocks = walkthrough(&readme);
    assert!(
        blocks.len() >= 6,
        "the walkthrough has its blocks: {}",
        blocks.len()
    );
    if Command::new("openssl").arg("version").output().is_err() {
        println!("skipped: the walkthrough runs `openssl verify`, and no openssl binary was found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server_port = free_port();
    let tap_port = free_port();
    let sh = Shell {
        home: tmp.path().to_path_buf(),
        cwd_file: tmp.path().join(".cwd"),
        bin_dir: Path::new(env!("CARGO_BIN_EXE_offpay"))
            .parent()
            .unwrap()
            .to_path_buf(),
        server_port,
        ports: vec![
            ("127.0.0.1:8080".into(), format!("127.0.0.1:{server_port}")),
            ("127.0.0.1:7000".into(), format!("127.0.0.1:{tap_port}")),
        ],
    };
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut background = Children(Vec::new());
    type Second = (
        String,
        Vec<String>,
        String,
        BufReader<std::io::PipeReader>,
        usize,
    );
    let mut second: Option<Second> = None;
    for block in &blocks {
        for step in &block.steps {
            let cmd = sh.localize(&substitute(&step.command, &vars));
            let expected: Vec<String> = step.expected.iter().map(|l| sh.localize(l)).collect();
            if block.second_terminal {
                let (r, w) = std::io::pipe().unwrap();
                let mut c = sh.command(&format!("exec {cmd}"));
                let mut child = c.stdout(w.try_clone().unwrap()).stderr(w).spawn().unwrap();
                drop(c); // the pipe's write ends go with it
                // Wait for its first line (it is listening then).
                let mut reader = BufReader::new(r);
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                assert!(
                    !first.is_empty(),
                    "`{cmd}` printed nothing: {:?}",
                    child.try_wait()
                );
                background.0.push(child);
                second = Some((cmd.clone(), expected, first, reader, background.0.len() - 1));
                continue;
            }
            if let Some(bg) = cmd.strip_suffix(" &") {
                let (r, w) = std::io::pipe().unwrap();
                let mut c = sh.command(&format!("exec {bg}"));
                let child = c
                    .stdout(w.try_clone().unwrap())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                drop(c);
                drop(w);
                let mut reader = BufReader::new(r);
                let mut got = String::new();
                for _ in 0..expected.len() {
                    reader.read_line(&mut got).unwrap();
                }
                check_output(bg, &expected, &got, &mut vars);
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                        sink.clear();
                    }
                });
                background.0.push(child);
                continue;
            }
            let out = sh.command(&cmd).output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "`{cmd}` failed ({:?}):\n{text}",
                out.status.code()
            );
            check_output(&cmd, &expected, &text, &mut vars);
        }
        if !block.second_terminal
            && let Some((cmd, expected, first, mut r, i)) = second.take()
        {
            let status = background.0[i].wait().unwrap();
            let mut text = first;
            r.read_to_string(&mut text).unwrap();
            assert!(status.success(), "`{cmd}` failed: {text}");
            check_output(&cmd, &expected, &text, &mut vars);
        }
    }
    assert!(second.is_none(), "a second-terminal block was never joined");
    drop(background);
}
