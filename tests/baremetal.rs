//! End-to-end checks of the bare-metal demos (issue 4):
//!
//! * `filament-kernel` is built with the `kernel` profile, booted in QEMU (TCG) through its
//!   PVH note, and its serial transcript is compared line by line; only the isa-debug-exit
//!   success status (0x10 -> 33) passes.
//! * `filament-freestanding` is run as a normal Linux process; its output and exit status
//!   (42) are compared, and its ELF program headers must show a static, non-PIE executable.
//!
//! Both images are built by a nested `cargo build` with a separate `--target-dir`: the
//! outer `cargo test` may still hold the lock on its own target directory. That directory
//! is `baremetal/` inside `CARGO_TARGET_TMPDIR`, the scratch directory cargo gives
//! integration tests *inside the target directory this test was built in*, so
//! `CARGO_TARGET_DIR`, `--target-dir` and `build.target-dir` are all respected and nothing
//! is written into the source tree.
//!
//! Without `qemu-system-x86_64` the boot test prints a loud SKIPPED line and passes, unless
//! `FILAMENT_REQUIRE_QEMU=1` (CI) makes it fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// QEMU exit status for `isa-debug-exit` value 0x10: `(0x10 << 1) | 1`.
const KERNEL_SUCCESS_STATUS: i32 = 33;
/// Exit status the freestanding demo chooses (sum of its fibers' results).
const FREESTANDING_STATUS: i32 = 42;
/// Timer rate programmed into the PIT by the kernel (`filament_kernel::TICK_HZ`).
const TICK_HZ: u64 = 1000;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The nested build's target directory: inside the outer build's target directory (see the
/// module docs), never a hard-coded `target/`.
fn images_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("baremetal")
}

/// Builds both images once per test process; returns the directory holding them.
fn build_images() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let target_dir = images_target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(root())
            .args(["build", "--profile", "kernel"])
            .args(["-p", "filament-kernel", "--bin", "filament-kernel"])
            .args(["-p", "filament-freestanding", "--bin", "filament-freestanding"])
            .args(["--features", "filament-kernel/metal,filament-freestanding/metal"])
            .arg("--target-dir")
            .arg(&target_dir)
            // Flags meant for the host test build (coverage, sanitizers) would break a
            // no_std image; the images get exactly what their build scripts say.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "building the bare-metal images failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(target_dir.join("kernel"))
    });
    match built {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

// ---- ELF program headers ----------------------------------------------------------------

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const ET_EXEC: u16 = 2;

struct Segment {
    kind: u32,
    offset: usize,
    file_size: usize,
    mem_size: u64,
}

struct Elf {
    bytes: Vec<u8>,
    kind: u16,
    segments: Vec<Segment>,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn read_elf(path: &Path) -> Elf {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(bytes[4], 2, "not ELF64");
    assert_eq!(bytes[5], 1, "not little-endian");
    assert_eq!(le_u16(&bytes, 18), 62, "not x86_64 (e_machine)");
    let kind = le_u16(&bytes, 16);
    let phoff = le_u64(&bytes, 32) as usize;
    let phentsize = usize::from(le_u16(&bytes, 54));
    let phnum = usize::from(le_u16(&bytes, 56));
    let segments = (0..phnum)
        .map(|i| {
            let at = phoff + i * phentsize;
            Segment {
                kind: le_u32(&bytes, at),
                offset: le_u64(&bytes, at + 8) as usize,
                file_size: le_u64(&bytes, at + 32) as usize,
                mem_size: le_u64(&bytes, at + 40),
            }
        })
        .collect();
    Elf { bytes, kind, segments }
}

impl Elf {
    fn has(&self, kind: u32) -> bool {
        self.segments.iter().any(|s| s.kind == kind)
    }

    /// (name, type, descriptor) of every note in every PT_NOTE segment.
    fn notes(&self) -> Vec<(Vec<u8>, u32, Vec<u8>)> {
        let mut notes = Vec::new();
        for seg in self.segments.iter().filter(|s| s.kind == PT_NOTE) {
            let data = &self.bytes[seg.offset..seg.offset + seg.file_size];
            let mut at = 0;
            while at + 12 <= data.len() {
                let namesz = le_u32(data, at) as usize;
                let descsz = le_u32(data, at + 4) as usize;
                let kind = le_u32(data, at + 8);
                let name_at = at + 12;
                let desc_at = name_at + namesz.next_multiple_of(4);
                let name = data[name_at..name_at + namesz].to_vec();
                let desc = data[desc_at..desc_at + descsz].to_vec();
                notes.push((name, kind, desc));
                at = desc_at + descsz.next_multiple_of(4);
            }
        }
        notes
    }
}

// ---- transcript matching ------------------------------------------------------------------

/// Matches `line` against `pattern`, where each `{}` stands for a decimal number; returns
/// the numbers.
fn match_line(pattern: &str, line: &str) -> Option<Vec<u64>> {
    let mut numbers = Vec::new();
    let mut rest = line;
    let mut pieces = pattern.split("{}").peekable();
    while let Some(literal) = pieces.next() {
        rest = rest.strip_prefix(literal)?;
        if pieces.peek().is_some() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            numbers.push(rest[..digits].parse().ok()?);
            rest = &rest[digits..];
        }
    }
    rest.is_empty().then_some(numbers)
}

/// Compares the transcript with `patterns` line by line; returns the numbers per line.
fn match_transcript(transcript: &str, patterns: &[&str]) -> Vec<Vec<u64>> {
    let lines: Vec<&str> = transcript.lines().collect();
    let mut captured = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or("<missing>");
        match match_line(pattern, line) {
            Some(numbers) => captured.push(numbers),
            None => panic!(
                "transcript line {} is {line:?}, expected {pattern:?}\n--- full transcript ---\n{transcript}",
                i + 1
            ),
        }
    }
    assert_eq!(lines.len(), patterns.len(), "transcript has extra lines\n--- full transcript ---\n{transcript}");
    captured
}

// ---- kernel ---------------------------------------------------------------------------------

const KERNEL_TRANSCRIPT: &[&str] = &[
    "filament-kernel: long mode, SSE enabled, serial up",
    "pvh: start info ok (version {}), usable RAM {} MiB",
    "interrupts: GDT+TSS with 3 IST stacks, IDT, PIC remapped to 0x20, PIT at 1000 Hz",
    "sse: 1/3 = 0.333333",
    "-- phase 1: round-robin yield",
    "[A] step 0 on fiber #0.0",
    "[B] step 0 on fiber #1.0",
    "[C] step 0 on fiber #2.0",
    "[A] step 1 on fiber #0.0",
    "[B] step 1 on fiber #1.0",
    "[C] step 1 on fiber #2.0",
    "[A] step 2 on fiber #0.0",
    "[B] step 2 on fiber #1.0",
    "[C] step 2 on fiber #2.0",
    "phase 1: results sum to 600",
    "-- phase 2: producer/consumer over a Channel<u32, 2>",
    "[producer] send 1",
    "[producer] send 2",
    "[producer] send 3",
    "[consumer] got 1",
    "[consumer] got 2",
    "[consumer] got 3",
    "[producer] send 4",
    "[producer] send 5",
    "[producer] send 6",
    "[producer] close",
    "[consumer] got 4",
    "[consumer] got 5",
    "[consumer] got 6",
    "[consumer] channel closed",
    "phase 2: consumer summed 21",
    "-- phase 3: sleeping on timer ticks (idle hook halts the CPU)",
    "[ticker] woke 1: slept {} ticks",
    "[ticker] woke 2: slept {} ticks",
    "[ticker] woke 3: slept {} ticks",
    "[ticker] woke 4: slept {} ticks",
    "[ticker] woke 5: slept {} ticks",
    "phase 3: {} ticks in 5 sleeps, CPU halted {} times",
    "-- phase 4: IrqSignal raised by the timer interrupt every 20 ticks",
    "[irq-waiter] signal 1: {} notification(s) at tick {}",
    "[irq-waiter] signal 2: {} notification(s) at tick {}",
    "[irq-waiter] signal 3: {} notification(s) at tick {}",
    "phase 4: received {} of {} notifications",
    "-- phase 5: an interrupt raises a signal between the runtime's poll and the idle hook's check",
    "[race] hook without IrqWatch: halted 1 time(s) with the signal pending (until the next tick)",
    "[race] hook with IrqWatch: halted 0 time(s)",
    "-- phase 6: COM1 receive interrupt -> IrqQueue -> echo fiber (the line 'bye' ends it)",
    "[phase 6] echo at priority 2 preempts a busy background fiber at priority 0",
    "[background] running; type lines now",
    "echo: hello from the host",
    "echo: filament, fibers & interrupts",
    "echo: bye",
    "[phase 6] background fiber yielded {} times meanwhile",
    "phase 6: 3 line(s) echoed; {} byte(s) in {} receive interrupt(s), {} dropped",
    "timer: {} interrupts, {} of them on the IST stack",
    "filament-kernel: all checks passed",
];

fn qemu_available() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What phase 6 is typed on QEMU's serial input (`\r\n` line ends, as a terminal sends;
/// the echo fiber drops the `\r`).
const SERIAL_INPUT: &str = "hello from the host\r\nfilament, fibers & interrupts\r\nbye\r\n";
/// The line the kernel prints once its COM1 receive interrupt is on and the echo fiber
/// waits (the background fiber prints it): the cue to type. Bytes written earlier could
/// reach the UART before the kernel programs it (its FIFO reset would drop them), or be
/// queued before the echo fiber first blocks (then no preemption would be shown).
const SERIAL_CUE: &str = "[background] running; type lines now";

/// Boots the kernel with its serial port on pipes; types [`SERIAL_INPUT`] once the
/// kernel printed [`SERIAL_CUE`].
fn boot_kernel(image: &Path) -> Output {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("timeout")
        .arg("60")
        .arg("qemu-system-x86_64")
        .args(["-accel", "tcg", "-machine", "pc", "-m", "128M", "-nodefaults", "-no-reboot"])
        .args(["-display", "none", "-serial", "stdio"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run timeout/qemu-system-x86_64");
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    // stderr on its own thread, so a chatty QEMU cannot block on a full pipe.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut bytes);
        bytes
    });
    let mut transcript = Vec::new();
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        if line.starts_with(SERIAL_CUE.as_bytes())
            && let Some(mut input) = stdin.take()
        {
            // Closing stdin afterwards is fine: QEMU keeps running on end of input.
            let _ = input.write_all(SERIAL_INPUT.as_bytes());
        }
        transcript.append(&mut line);
    }
    let status = child.wait().expect("wait for qemu");
    Output { status, stdout: transcript, stderr: errors.join().unwrap_or_default() }
}

#[test]
fn kernel_image_is_a_pvh_elf() {
    let elf = read_elf(&build_images().join("filament-kernel"));
    assert_eq!(elf.kind, ET_EXEC, "kernel must be a non-PIE executable");
    assert!(!elf.has(PT_INTERP) && !elf.has(PT_DYNAMIC), "kernel must be static");
    assert!(elf.has(PT_LOAD));
    // XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen": what QEMU's -kernel loader looks for.
    let pvh = elf.notes().into_iter().find(|(name, kind, _)| name == b"Xen\0" && *kind == 18);
    let (_, _, desc) = pvh.expect("PT_NOTE with the PVH entry note");
    let entry = le_u64(&desc, 0);
    assert!((0x10_0000..0x4000_0000).contains(&entry), "PVH entry {entry:#x} below 1 GiB");
    let loaded: u64 = elf.segments.iter().filter(|s| s.kind == PT_LOAD).map(|s| s.mem_size).sum();
    assert!(loaded < 4 << 20, "kernel occupies {loaded} bytes; expected a small image");
}

#[test]
fn kernel_boots_in_qemu_and_passes_its_checks() {
    let image = build_images().join("filament-kernel");
    if !qemu_available() {
        let message = "SKIPPED: qemu-system-x86_64 not found; install with: apt-get install -y qemu-system-x86";
        if std::env::var("FILAMENT_REQUIRE_QEMU").as_deref() == Ok("1") {
            panic!("{message} (FILAMENT_REQUIRE_QEMU=1 makes this an error)");
        }
        // Straight to the stderr handle: the test harness captures `eprintln!` of passing
        // tests, and this line must be seen.
        let _ = writeln!(std::io::stderr(), "\n**********\n{message}\n**********\n");
        return;
    }
    let output = boot_kernel(&image);
    let transcript = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    let status = output.status.code();
    assert_eq!(
        status,
        Some(KERNEL_SUCCESS_STATUS),
        "QEMU exit status {status:?} (33 = success, 35 check failed, 37 panic, 39 CPU exception, \
         0 = triple fault, 124 = timeout)\n--- serial ---\n{transcript}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let n = match_transcript(&transcript, KERNEL_TRANSCRIPT);
    // Index of the (first) expected line starting with `prefix`.
    let at = |prefix: &str| KERNEL_TRANSCRIPT.iter().position(|p| p.starts_with(prefix)).expect("pattern exists");

    // PVH start info: version >= 1, and QEMU's 128 MiB minus the legacy holes.
    let pvh = &n[at("pvh:")];
    assert!(pvh[0] >= 1 && (120..=128).contains(&pvh[1]), "pvh line {pvh:?}");

    // Phase 3: each sleep of 10 ticks takes at least 10 ticks, and (generously, for slow
    // CI machines) at most a second of timer ticks.
    let first = at("[ticker] woke 1");
    let sleeps: Vec<u64> = (first..first + 5).map(|i| n[i][0]).collect();
    for &slept in &sleeps {
        assert!((10..=TICK_HZ).contains(&slept), "sleep of 10 ticks took {slept}: {sleeps:?}");
    }
    let (total, halts) = (n[at("phase 3:")][0], n[at("phase 3:")][1]);
    assert_eq!(total, sleeps.iter().sum::<u64>(), "phase 3 total");
    assert!(halts >= 1, "the idle hook never halted");

    // Phase 4: every wait returns at least one notification, at increasing ticks.
    let mut last_tick = 0;
    let mut received = 0;
    let signals = &n[at("[irq-waiter] signal 1")..][..3];
    for line in signals {
        let (count, tick) = (line[0], line[1]);
        assert!(count >= 1, "wait returned without a notification: {line:?}");
        assert!(tick >= 20 && tick > last_tick, "signal ticks not increasing: {signals:?}");
        last_tick = tick;
        received += count;
    }
    let phase4 = &n[at("phase 4:")];
    assert_eq!(phase4[0], received, "phase 4 received");
    assert!(phase4[1] >= received, "more notifications received than raised");

    // Every timer interrupt ran on the IST stack; the run lasted at least the sleeps plus
    // the signal phase, and less than the 60 s timeout.
    // Phase 6: every typed byte went through the interrupt handler into the queue.
    let phase6 = &n[at("phase 6:")];
    let (bytes, irqs, dropped) = (phase6[0], phase6[1], phase6[2]);
    assert_eq!(bytes, SERIAL_INPUT.len() as u64, "bytes the COM1 interrupt handler received");
    assert!(irqs >= 1 && irqs <= bytes, "receive interrupts {irqs} for {bytes} bytes");
    assert_eq!(dropped, 0, "bytes dropped by a full queue");

    let (ticks, on_ist) = (n[at("timer:")][0], n[at("timer:")][1]);
    assert_eq!(ticks, on_ist, "timer interrupts off the IST stack");
    assert!(ticks >= total + 40 && ticks >= last_tick && ticks < 60 * TICK_HZ, "timer interrupt count {ticks}");
}

// ---- freestanding Linux binary ----------------------------------------------------------------

const FREESTANDING_TRANSCRIPT: &str = "\
filament-freestanding: no libc, static, argc=1
mem: memmove (both overlaps), memset, memcpy, bcmp, memcmp: ok
[w0] step 0: +1 = 1
[w1] step 0: +2 = 2
[w2] step 0: +3 = 3
[w0] step 1: +2 = 3
[w1] step 1: +3 = 5
[w2] step 1: +4 = 7
[w0] step 2: +3 = 6
[w1] step 2: +4 = 9
[w2] step 2: +5 = 12
[w0] step 3: +4 = 10
[w1] step 3: +5 = 14
[w2] step 3: +6 = 18
[sleeper] woke at virtual tick 100 (slept 100)
results: workers sum to 42, sleeper slept 100 ticks
filament-freestanding: exit_group(42)
";

#[test]
fn freestanding_binary_is_static_without_interpreter() {
    let path = build_images().join("filament-freestanding");
    let elf = read_elf(&path);
    assert_eq!(elf.kind, ET_EXEC, "expected a non-PIE executable (ET_EXEC)");
    assert!(!elf.has(PT_INTERP), "PT_INTERP present: the binary wants a dynamic loader");
    assert!(!elf.has(PT_DYNAMIC), "PT_DYNAMIC present: the binary is dynamically linked");
    // No libc: the C memory functions and the personality stub `core` needs are defined in
    // the image itself (by filament's `mem` feature), where binutils' `nm` is installed.
    if let Ok(out) = Command::new("nm").arg(&path).output()
        && out.status.success()
    {
        let symbols = String::from_utf8_lossy(&out.stdout);
        for name in ["memcpy", "memmove", "memset", "memcmp", "bcmp", "rust_eh_personality"] {
            let defined = symbols.lines().any(|l| l.ends_with(&format!(" T {name}")));
            assert!(defined, "{name} is not defined in the freestanding binary:\n{symbols}");
        }
    }
    // `file` agrees, where it is installed.
    if let Ok(out) = Command::new("file").arg(&path).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert!(text.contains("statically linked"), "file(1) says: {text}");
        }
    }
}

#[test]
fn freestanding_binary_runs_fibers_and_exits_with_its_status() {
    let path = build_images().join("filament-freestanding");
    let output = Command::new(&path).stdin(Stdio::null()).env_clear().output().expect("run the freestanding binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout, FREESTANDING_TRANSCRIPT);
    assert_eq!(output.status.code(), Some(FREESTANDING_STATUS), "exit status; stdout:\n{stdout}");
    assert!(output.stderr.is_empty(), "unexpected stderr output");
}

/// Regression: the images used to go to `<repo>/target/baremetal` whatever the target
/// directory was (`CARGO_TARGET_DIR=/tmp/x cargo test --test baremetal` still wrote into the
/// source tree). They must be built inside the target directory this test binary was built
/// in, which is an ancestor of the running executable (`<target-dir>/<profile>/deps/...`).
#[test]
fn images_are_built_inside_this_tests_target_directory() {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("canonicalize {p:?}: {e}"));
    let images = canonical(build_images());
    let target_dir =
        canonical(Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR has a parent"));
    let exe = canonical(&std::env::current_exe().expect("path of the test binary"));
    assert!(
        exe.ancestors().any(|a| a == target_dir),
        "CARGO_TARGET_TMPDIR {target_dir:?} is not the target directory of {exe:?}"
    );
    assert!(images.starts_with(&target_dir), "images in {images:?}, outside the target directory {target_dir:?}");
    assert!(images.join("filament-kernel").is_file() && images.join("filament-freestanding").is_file());
}

#[test]
fn transcript_matcher_captures_numbers() {
    assert_eq!(match_line("a {} b {}", "a 12 b 3"), Some(vec![12, 3]));
    assert_eq!(match_line("a {} b", "a x b"), None);
    assert_eq!(match_line("exact", "exact!"), None);
    assert_eq!(match_line("{}", "7"), Some(vec![7]));
}
