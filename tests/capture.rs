//! `nslab capture`: frames of a node's interface as pcap, read back with
//! tcpdump, to a file and through a pipe; clean ends on a count, a
//! duration, SIGINT and a reader that goes away.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{KillOnDrop, TestLab};

/// Two hosts on one /30. IPv6 is off, so that nothing but what the test
/// sends (ARP, ICMP) crosses the link.
const PAIR: &str = r#"
name: LAB
topology:
  defaults:
    sysctls:
      net.ipv6.conf.all.disable_ipv6: 1
      net.ipv6.conf.default.disable_ipv6: 1
  nodes:
    h1: {}
    h2: {}
  links:
    - endpoints: ["h1:eth0", "h2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
"#;

fn have_tcpdump(test: &str) -> bool {
    let found = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        common::skipped(format_args!(
            "{test}: tcpdump is not installed (scripts/test installs it)"
        ));
    }
    found
}

/// A pair lab, up, with h1's ARP entry for h2 in place (so the captured
/// ping is the ICMP exchange alone).
/// A file in the test's folder, as the text `-w` takes.
fn pcap_path(lab: &TestLab, name: &str) -> String {
    lab.dir.join(name).to_str().expect("utf-8").to_owned()
}

fn pair_lab(tag: &str) -> TestLab {
    let lab = TestLab::new(tag, PAIR);
    lab.up();
    lab.assert_ping("h1", "10.0.0.2");
    lab
}

/// A running `nslab capture`, its stderr lines arriving on a channel.
struct Running {
    child: KillOnDrop,
    stderr: Receiver<String>,
}

impl Running {
    fn start(args: &[&str], stdout: Stdio) -> Running {
        let mut child = KillOnDrop(
            common::nslab()
                .arg("capture")
                .args(args)
                .stdout(stdout)
                .stderr(Stdio::piped())
                .spawn()
                .expect("start nslab capture"),
        );
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let running = Running { child, stderr };
        running.wait_for_line("capturing on");
        running
    }

    /// Waits (up to 10 s) for a stderr line containing `text`.
    fn wait_for_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {text:?}: {e}"),
            }
        }
    }

    /// Waits (up to 10 s) for the exit; returns the code and the rest of
    /// stderr.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                // Killed and reaped as `self` drops.
                panic!("nslab capture did not stop within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF, once the process has exited.
        let rest: Vec<String> = self.stderr.iter().collect();
        (status.code().unwrap_or(-1), rest.join("\n"))
    }
}

/// `tcpdump -r FILE -n`'s packet lines.
fn tcpdump_read(file: &str) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-r", file, "-n"])
        .output()
        .expect("run tcpdump");
    assert!(
        out.status.success(),
        "tcpdump could not read {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The two lines of one ping from h1 to h2, request then reply.
fn assert_echo_exchange(lines: &[String]) {
    assert_eq!(
        lines.len(),
        2,
        "exactly the request and the reply: {lines:#?}"
    );
    assert!(
        lines[0].contains("IP 10.0.0.1 > 10.0.0.2: ICMP echo request"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("IP 10.0.0.2 > 10.0.0.1: ICMP echo reply"),
        "{lines:#?}"
    );
}

#[test]
fn a_ping_captured_to_a_file_reads_back_in_tcpdump() {
    let test = "a_ping_captured_to_a_file_reads_back_in_tcpdump";
    if !common::can_build_labs(test) || !have_tcpdump(test) {
        return;
    }
    let lab = pair_lab("capfile");
    let file = &pcap_path(&lab, "h1.pcap");
    let target = format!("{}/h1:eth0", lab.name);
    let capture = Running::start(&[&target, "-w", file, "-c", "2"], Stdio::null());
    lab.assert_ping("h1", "10.0.0.2");
    let (code, stderr) = capture.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("2 packets captured"), "{stderr}");

    // Both directions: the request left h1, the reply came in.
    assert_echo_exchange(&tcpdump_read(file));
    let bytes = std::fs::read(file).expect("read the capture");
    assert_eq!(
        &bytes[..4],
        &[0x4d, 0x3c, 0xb2, 0xa1],
        "nanosecond pcap magic"
    );
}

#[test]
fn a_capture_piped_into_tcpdump() {
    let test = "a_capture_piped_into_tcpdump";
    if !common::can_build_labs(test) || !have_tcpdump(test) {
        return;
    }
    let lab = pair_lab("cappipe");
    // Seen from h2 this time, with microsecond timestamps.
    let target = format!("{}/h2:eth0", lab.name);
    let mut capture = Running::start(&[&target, "-c", "2", "--micro"], Stdio::piped());
    let pipe = capture.child.stdout.take().expect("stdout");
    let mut tcpdump = KillOnDrop(
        Command::new("tcpdump")
            .args(["-r", "-", "-n"])
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump"),
    );
    lab.assert_ping("h1", "10.0.0.2");
    let (code, stderr) = capture.finish();
    assert_eq!(code, 0, "{stderr}");
    // A few lines each: neither pipe fills while the other is read.
    let mut out = String::new();
    let mut err = String::new();
    let stdout = tcpdump
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out);
    let stderr = tcpdump
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    stdout.and(stderr).expect("read tcpdump's output");
    let status = tcpdump.wait().expect("tcpdump");
    assert!(status.success(), "{err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_echo_exchange(&lines);
}

#[test]
fn a_reader_that_goes_away_ends_the_capture_cleanly() {
    let test = "a_reader_that_goes_away_ends_the_capture_cleanly";
    if !common::can_build_labs(test) {
        return;
    }
    let lab = pair_lab("capgone");
    let target = format!("{}/h1:eth0", lab.name);
    let mut capture = Running::start(&[&target], Stdio::piped());
    let mut pipe = capture.child.stdout.take().expect("stdout");
    let mut header = [0u8; 24];
    pipe.read_exact(&mut header)
        .expect("the header comes at once");
    assert_eq!(&header[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    drop(pipe);
    // Packets to write, into a pipe nobody reads any more.
    let (code, out, err) = lab.exec(
        "h1",
        &["ping", "-c", "3", "-i", "0.2", "-W", "3", "10.0.0.2"],
    );
    assert_eq!(code, 0, "ping: {out}{err}");
    let (code, stderr) = capture.finish();
    assert_eq!(code, 0, "a closed reader is a clean end: {stderr}");
    assert!(stderr.contains("packets captured"), "{stderr}");
}

#[test]
fn sigint_and_duration_end_a_capture_with_a_valid_file() {
    let test = "sigint_and_duration_end_a_capture_with_a_valid_file";
    if !common::can_build_labs(test) || !have_tcpdump(test) {
        return;
    }
    let lab = pair_lab("capstop");
    let target = format!("{}/h1:eth0", lab.name);

    let by_signal = &pcap_path(&lab, "sigint.pcap");
    let capture = Running::start(&[&target, "-w", by_signal], Stdio::null());
    lab.assert_ping("h1", "10.0.0.2");
    let pid = nix::unistd::Pid::from_raw(capture.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let (code, stderr) = capture.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("2 packets captured"), "{stderr}");
    assert_echo_exchange(&tcpdump_read(by_signal));

    let timed = &pcap_path(&lab, "timed.pcap");
    let started = Instant::now();
    let capture = Running::start(&[&target, "-w", timed, "--duration", "0.5"], Stdio::null());
    let (code, stderr) = capture.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(stderr.contains("0 packets captured"), "{stderr}");
    assert!(tcpdump_read(timed).is_empty(), "a quiet link: no packets");
}

#[test]
fn refuses_a_terminal_and_names_a_missing_interface() {
    let test = "refuses_a_terminal_and_names_a_missing_interface";
    if !common::can_build_labs(test) {
        return;
    }
    let lab = TestLab::new("capbad", PAIR);
    lab.up();
    let (code, _, err) = common::run(&[
        "capture",
        &format!("{}/h1:eth9", lab.name),
        "-w",
        "/dev/null",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("h1:eth9: no interface \"eth9\""), "{err}");

    // stdout a terminal: `script` gives the command a pseudo-terminal.
    let command = format!(
        "{} capture {}/h1:eth0",
        env!("CARGO_BIN_EXE_nslab"),
        lab.name
    );
    match Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(2), "{text}");
            assert!(
                text.contains("refusing to write binary pcap data to a terminal"),
                "{text}"
            );
        }
        Err(e) => common::skipped(format_args!(
            "the terminal half of {test}: script(1) did not run: {e}"
        )),
    }
}

/// How long a capture may take to end once it should, well above the
/// reader's grace (1 s) and a lab's teardown.
const PROMPTLY: Duration = Duration::from_secs(4);

/// Waits for the exit like [`Running::finish`], and for no longer than
/// `limit` since `since`.
fn finish_within(capture: Running, since: Instant, limit: Duration) -> (i32, String) {
    let (code, stderr) = capture.finish();
    let took = since.elapsed();
    assert!(took < limit, "took {took:?} to end: {stderr}");
    (code, stderr)
}

#[test]
fn a_capture_on_lo_counts_each_frame_once_and_ends_when_the_lab_goes_down() {
    let test = "a_capture_on_lo_counts_each_frame_once_and_ends_when_the_lab_goes_down";
    if !common::can_build_labs(test) || !have_tcpdump(test) {
        return;
    }
    let lab = pair_lab("caplo");
    let file = &pcap_path(&lab, "lo.pcap");
    // The socket holds h1's net namespace, and `lo` in it, past the lab:
    // only the init's exit can end this capture.
    let target = format!("{}/h1:lo", lab.name);
    let capture = Running::start(&[&target, "-w", file], Stdio::null());
    let (code, out, err) = lab.exec("h1", &["ping", "-c", "1", "-W", "3", "127.0.0.1"]);
    assert_eq!(code, 0, "ping: {out}{err}");
    // Let the capture write the exchange before the lab goes.
    std::thread::sleep(Duration::from_millis(300));

    let down = Instant::now();
    let (code, _, err) = common::run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down: {err}");
    let (code, stderr) = finish_within(capture, down, PROMPTLY);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("the lab went down"), "{stderr}");
    // Each frame once on lo: the kernel skips the outgoing copies before
    // they reach the socket (PACKET_IGNORE_OUTGOING), so they are not
    // counted either.
    assert!(stderr.contains("2 packets captured"), "{stderr}");
    assert!(stderr.contains("2 packets received by filter"), "{stderr}");
    let lines = tcpdump_read(file);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("IP 127.0.0.1 > 127.0.0.1: ICMP echo request"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("IP 127.0.0.1 > 127.0.0.1: ICMP echo reply"),
        "{lines:#?}"
    );
    assert!(
        common::leftovers_of(&lab.name).is_empty(),
        "{:?}",
        common::leftovers_of(&lab.name)
    );
}

#[test]
fn an_interface_going_down_or_away_ends_the_capture_cleanly() {
    let test = "an_interface_going_down_or_away_ends_the_capture_cleanly";
    if !common::can_build_labs(test) || !have_tcpdump(test) {
        return;
    }
    let lab = pair_lab("capdown");
    let target = format!("{}/h1:eth0", lab.name);

    // Set down in h1.
    let file = &pcap_path(&lab, "down.pcap");
    let capture = Running::start(&[&target, "-w", file], Stdio::null());
    lab.assert_ping("h1", "10.0.0.2");
    let (code, _, err) = lab.exec("h1", &["ip", "link", "set", "eth0", "down"]);
    assert_eq!(code, 0, "ip link set down: {err}");
    let (code, stderr) = finish_within(capture, Instant::now(), PROMPTLY);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the interface went down or was deleted"),
        "{stderr}"
    );
    assert!(stderr.contains("2 packets captured"), "{stderr}");
    assert_echo_exchange(&tcpdump_read(file));

    // Down from the start: refused at once, saying so.
    let (code, _, err) = common::run(&["capture", &target, "-w", "/dev/null"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("h1:eth0: interface eth0 is down"), "{err}");
    let (code, _, err) = lab.exec("h1", &["ip", "link", "set", "eth0", "up"]);
    assert_eq!(code, 0, "ip link set up: {err}");

    // Deleted, from the other end of the veth.
    let file = &pcap_path(&lab, "deleted.pcap");
    let capture = Running::start(&[&target, "-w", file], Stdio::null());
    let (code, _, err) = lab.exec("h2", &["ip", "link", "del", "eth0"]);
    assert_eq!(code, 0, "ip link del: {err}");
    let (code, stderr) = finish_within(capture, Instant::now(), PROMPTLY);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the interface went down or was deleted"),
        "{stderr}"
    );
    assert!(tcpdump_read(file).len() <= 2, "a valid file");
}

/// `ping -f` from h1 to h2 for a few seconds, in the background.
fn flood(lab: &TestLab) -> KillOnDrop {
    KillOnDrop(
        common::nslab()
            .args(["exec", &format!("{}/h1", lab.name), "--"])
            .args(["ping", "-f", "-q", "-s", "1400", "-w", "5", "10.0.0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ping -f"),
    )
}

#[test]
fn a_reader_that_stalls_holds_neither_duration_nor_sigint_nor_the_lab_going_down() {
    let test = "a_reader_that_stalls_holds_neither_duration_nor_sigint_nor_the_lab_going_down";
    if !common::can_build_labs(test) {
        return;
    }
    let lab = pair_lab("capstall");
    let target = format!("{}/h1:eth0", lab.name);

    // --duration, into a pipe nobody reads: it fills within the first
    // frames of the flood and stays full.
    let started = Instant::now();
    let mut capture = Running::start(&[&target, "--duration", "1"], Stdio::piped());
    let _unread = capture.child.stdout.take().expect("stdout");
    let _pinger = flood(&lab);
    let (code, stderr) = finish_within(capture, started, PROMPTLY);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("packets captured"), "{stderr}");

    // SIGINT, likewise.
    let mut capture = Running::start(&[&target], Stdio::piped());
    let _unread = capture.child.stdout.take().expect("stdout");
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(capture.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let (code, stderr) = finish_within(capture, Instant::now(), PROMPTLY);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("packets captured"), "{stderr}");

    // The lab going down, likewise (last: it ends the lab).
    let mut capture = Running::start(&[&target], Stdio::piped());
    let _unread = capture.child.stdout.take().expect("stdout");
    let pinger = flood(&lab);
    std::thread::sleep(Duration::from_millis(500));
    drop(pinger);
    let down = Instant::now();
    let (code, _, err) = common::run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down: {err}");
    let (code, stderr) = finish_within(capture, down, PROMPTLY);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("the lab went down"), "{stderr}");
}

/// The number before `what` in tcpdump's closing lines.
fn count(stderr: &str, what: &str) -> u64 {
    stderr
        .lines()
        .find_map(|line| line.strip_suffix(what))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {what:?} line: {stderr}"))
}

#[test]
fn the_frames_queued_when_the_interface_goes_away_are_all_written() {
    let test = "the_frames_queued_when_the_interface_goes_away_are_all_written";
    if !common::can_build_labs(test) || !have_tcpdump(test) {
        return;
    }
    let lab = pair_lab("capdrain");
    let target = format!("{}/h1:eth0", lab.name);
    let file = &pcap_path(&lab, "drain.pcap");
    let capture = Running::start(&[&target, "-w", file], Stdio::null());
    let pinger = flood(&lab);
    std::thread::sleep(Duration::from_secs(1));
    // Deleted from the other end of the veth, under load.
    let (code, _, err) = lab.exec("h2", &["ip", "link", "del", "eth0"]);
    assert_eq!(code, 0, "ip link del: {err}");
    let (code, stderr) = finish_within(capture, Instant::now(), PROMPTLY);
    drop(pinger);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the interface went down or was deleted"),
        "{stderr}"
    );
    // Nothing comes after the deletion, so every frame the kernel queued
    // (received, less those it dropped) was read out and written.
    let captured = count(&stderr, " packets captured");
    let received = count(&stderr, " packets received by filter");
    let dropped = count(&stderr, " packets dropped by kernel");
    assert!(captured > 1000, "a flood, not a trickle: {stderr}");
    assert_eq!(captured, received - dropped, "{stderr}");
    assert_eq!(tcpdump_read(file).len() as u64, captured);
}
