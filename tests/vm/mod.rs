//! qemu virtual machines for the DRBD tier (DESIGN.md §6): this machine's kernel has no DRBD
//! module and KVM hangs here, so each VM is qemu in TCG mode booting Debian's
//! `linux-image-amd64` kernel from a small initramfs (`build-initramfs.sh`) with a sparse disk
//! file as virtio-blk. Two VMs talk over qemu's UDP socket networking on loopback; the test
//! talks to each over a command channel on its second serial port (a unix socket here).
//!
//! Every wait has a deadline; qemu processes and files go on drop, also when a test fails.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, ChildGuard, Outcome};

/// Debian's kernel image and the version its modules are installed under.
pub struct Kernel {
    pub version: String,
    pub image: PathBuf,
}

/// The newest /boot/vmlinuz-* whose modules include drbd.ko (the host's running kernel has none).
pub fn debian_kernel() -> Option<Kernel> {
    let mut found: Vec<Kernel> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let version = name.strip_prefix("vmlinuz-")?.to_string();
            let drbd = format!("/lib/modules/{version}/kernel/drivers/block/drbd/drbd.ko");
            Path::new(&drbd).exists().then(|| Kernel { image: PathBuf::from("/boot").join(&name), version })
        })
        .collect();
    found.sort_by(|a, b| a.version.cmp(&b.version));
    found.pop()
}

/// Builds the VMs' initramfs into `dir` with the hastack binary under test.
pub fn build_initramfs(dir: &Path, kernel: &Kernel) -> PathBuf {
    let out = dir.join("initramfs.cpio.gz");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/build-initramfs.sh");
    let result =
        Command::new(script).arg(&out).arg(&kernel.version).arg(bin()).output().expect("run build-initramfs.sh");
    assert!(result.status.success(), "build-initramfs.sh failed: {}", String::from_utf8_lossy(&result.stderr));
    out
}

/// The DRBD VMs' initramfs with PostgreSQL 15 added (`build-pg-overlay.sh`): the base archive
/// and the overlay concatenated, which the kernel unpacks into one root. Only the data-layer
/// power-cut test pays for the overlay.
pub fn build_pg_initramfs(dir: &Path, kernel: &Kernel) -> PathBuf {
    let overlay = dir.join("pg-overlay.cpio.gz");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/build-pg-overlay.sh");
    let (base, result) = std::thread::scope(|s| {
        let pg = s.spawn(|| Command::new(&script).arg(&overlay).output().expect("run build-pg-overlay.sh"));
        (build_initramfs(dir, kernel), pg.join().unwrap())
    });
    assert!(result.status.success(), "build-pg-overlay.sh failed: {}", String::from_utf8_lossy(&result.stderr));
    let out = dir.join("initramfs-pg.cpio.gz");
    let mut joined = std::fs::read(&base).unwrap();
    joined.extend(std::fs::read(&overlay).unwrap());
    std::fs::write(&out, joined).unwrap();
    out
}

/// The DRBD VMs' initramfs with ActiveMQ's libraries and account added, and the read-only disk
/// with the Java runtime and ActiveMQ (`build-amq-overlay.sh`): (initramfs, disk).
pub fn build_amq_initramfs(dir: &Path, kernel: &Kernel) -> (PathBuf, PathBuf) {
    let overlay = dir.join("amq-overlay");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/build-amq-overlay.sh");
    let (base, result) = std::thread::scope(|s| {
        let amq = s.spawn(|| Command::new(&script).arg(&overlay).output().expect("run build-amq-overlay.sh"));
        (build_initramfs(dir, kernel), amq.join().unwrap())
    });
    assert!(result.status.success(), "build-amq-overlay.sh failed: {}", String::from_utf8_lossy(&result.stderr));
    let out = dir.join("initramfs-amq.cpio.gz");
    let mut joined = std::fs::read(&base).unwrap();
    joined.extend(std::fs::read(overlay.with_extension("cpio.gz")).unwrap());
    std::fs::write(&out, joined).unwrap();
    (out, overlay.with_extension("img"))
}

/// Where a VM sits on the test network: its node name (the `on` section in drbd.conf), its
/// address inside the VMs' private link, and the loopback UDP ports qemu uses for the link.
pub struct VmSpec<'a> {
    pub node: &'a str,
    pub ip: &'a str,
    pub mac: &'a str,
    pub udp_local: u16,
    pub udp_peer: u16,
}

/// What a VM gets beyond the DRBD tier's defaults (256 MiB, the VM-to-VM link only).
#[derive(Default)]
pub struct VmExtras<'a> {
    /// Memory in MiB.
    pub mem_mib: Option<u32>,
    /// The network namespace qemu runs in (`ip netns exec`): its tap device lives there, and the
    /// VM-to-VM link's loopback UDP ports are that namespace's.
    pub netns: Option<&'a str>,
    /// A tap device in `netns` for the VM's second NIC (eth1), and that NIC's MAC.
    pub tap: Option<(&'a str, &'a str)>,
    /// A second disk, read-only (the guest's /dev/vdb; both VMs may share it): the broker's
    /// runtime (`build-amq-overlay.sh`).
    pub ro_disk: Option<&'a Path>,
}

/// A running VM. Dropping it kills qemu (a power cut, as far as the VM can tell).
pub struct Vm {
    pub node: String,
    qemu: Option<ChildGuard>,
    channel: UnixStream,
    pending: Vec<u8>,
    console: PathBuf,
    seq: u32,
}

/// Two free loopback UDP ports for the VMs' link (the kernel picks them; qemu binds them next).
pub fn free_udp_ports() -> (u16, u16) {
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

impl Vm {
    /// Starts qemu and connects to its command channel; [`Vm::wait_ready`] waits for the boot.
    /// qemu gets SIGKILL if the thread that started it ends (the test, even when nextest kills
    /// it), so no VM outlives its test.
    pub fn start(dir: &Path, kernel: &Kernel, initramfs: &Path, disk: &Path, spec: &VmSpec) -> Vm {
        Self::start_with(dir, kernel, initramfs, disk, spec, &VmExtras::default())
    }

    /// [`Vm::start`] with more memory, a network namespace and a tap NIC.
    pub fn start_with(
        dir: &Path,
        kernel: &Kernel,
        initramfs: &Path,
        disk: &Path,
        spec: &VmSpec,
        extras: &VmExtras,
    ) -> Vm {
        let socket = dir.join(format!("{}.sock", spec.node));
        let console = dir.join(format!("{}-console.log", spec.node));
        // no_timer_check: under TCG on a loaded host the guest kernel may find the IO-APIC timer too
        // slow and panic ("IO-APIC + timer doesn't work!"); the check is meaningless in a VM.
        let append = format!("console=ttyS0 quiet panic=-1 no_timer_check hst.node={} hst.ip={}", spec.node, spec.ip);
        // `ip netns exec` execs qemu (no fork), so the parent-death signal below reaches qemu.
        let mut qemu = match extras.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "qemu-system-x86_64"]);
                c
            }
            None => Command::new("qemu-system-x86_64"),
        };
        if let Some((tap, mac)) = extras.tap {
            qemu.arg("-netdev").arg(format!("tap,id=n1,ifname={tap},script=no,downscript=no"));
            // After the link's NIC on the command line, so the guest names it eth1.
            qemu.arg("-device").arg(format!("virtio-net-pci,netdev=n1,mac={mac},romfile=,addr=0x9"));
        }
        let mem = extras.mem_mib.unwrap_or(256).to_string();
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            qemu.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child =
            qemu.args(["-accel", "tcg", "-m", &mem, "-smp", "1", "-nographic", "-monitor", "none", "-no-reboot"])
                .arg("-kernel")
                .arg(&kernel.image)
                .arg("-initrd")
                .arg(initramfs)
                .args(["-append", &append])
                .arg("-serial")
                .arg(format!("file:{}", console.display()))
                .arg("-chardev")
                .arg(format!("socket,id=cmd,path={},server=on,wait=off", socket.display()))
                .args(["-serial", "chardev:cmd"])
                .arg("-drive")
                .arg(format!("file={},format=raw,if=virtio", disk.display()))
                .args(extras.ro_disk.iter().flat_map(|d| {
                    ["-drive".to_string(), format!("file={},format=raw,if=virtio,readonly=on", d.display())]
                }))
                .arg("-netdev")
                .arg(format!("socket,id=n0,udp=127.0.0.1:{},localaddr=127.0.0.1:{}", spec.udp_peer, spec.udp_local))
                .arg("-device")
                .arg(format!("virtio-net-pci,netdev=n0,mac={},romfile=", spec.mac))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("{}-qemu.err", spec.node))).unwrap())
                .spawn()
                .expect("start qemu-system-x86_64");
        let mut qemu = ChildGuard(child);
        let started = Instant::now();
        let channel = loop {
            if let Ok(s) = UnixStream::connect(&socket) {
                break s;
            }
            if let Ok(Some(status)) = qemu.0.try_wait() {
                let err = std::fs::read_to_string(dir.join(format!("{}-qemu.err", spec.node))).unwrap_or_default();
                panic!("qemu for {} exited at once ({status}): {err}", spec.node);
            }
            assert!(started.elapsed() < Duration::from_secs(10), "qemu for {} never opened its channel", spec.node);
            std::thread::sleep(Duration::from_millis(20));
        };
        Vm { node: spec.node.to_string(), qemu: Some(qemu), channel, pending: Vec::new(), console, seq: 0 }
    }

    /// Waits (up to `limit`) until the VM's init serves the command channel.
    pub fn wait_ready(&mut self, limit: Duration) {
        let ready = format!("@@READY {}\n", self.node);
        self.read_until(|buf| find(buf, ready.as_bytes()).map(|i| i + ready.len()), Instant::now() + limit, "boot");
    }

    /// Runs a busybox-sh command line in the VM; panics if no answer within `limit`.
    pub fn sh(&mut self, command: &str, limit: Duration) -> Outcome {
        assert!(!command.contains('\n'), "one line per command");
        self.seq += 1;
        let id = self.seq;
        let started = Instant::now();
        self.channel.write_all(format!("{id} {command}\n").as_bytes()).expect("write to the VM's channel");
        let end_tag = format!("@@END {id} ");
        let reply = self.read_until(
            |buf| {
                let at = find(buf, end_tag.as_bytes())?;
                let eol = buf[at..].iter().position(|&b| b == b'\n')?;
                Some(at + eol + 1)
            },
            started + limit,
            command,
        );
        let text = String::from_utf8_lossy(&reply).into_owned();
        let section = |from: &str, to: &str| -> String {
            let start = text.find(from).map(|i| i + from.len()).unwrap_or(0);
            let end = text[start..].find(to).map(|i| start + i).unwrap_or(text.len());
            // The VM adds one newline after each section so the markers start a line.
            text[start..end].strip_suffix('\n').unwrap_or(&text[start..end]).to_string()
        };
        let stdout = section(&format!("@@OUT {id}\n"), &format!("@@ERR {id}\n"));
        let stderr = section(&format!("@@ERR {id}\n"), &end_tag);
        let code = text[text.find(&end_tag).unwrap() + end_tag.len()..].trim().parse().unwrap_or(-1);
        Outcome { code, stdout, stderr, elapsed: started.elapsed() }
    }

    /// A command that must succeed; returns its stdout.
    #[track_caller]
    pub fn ok(&mut self, command: &str, limit: Duration) -> String {
        let out = self.sh(command, limit);
        assert_eq!(out.code, 0, "{}: `{command}` failed:\n{}\n{}", self.node, out.stdout, out.stderr);
        out.stdout
    }

    /// Kills qemu with SIGKILL: the VM loses power mid-flight, disk caches and all.
    pub fn power_cut(&mut self) {
        if let Some(mut qemu) = self.qemu.take() {
            let _ = qemu.0.kill();
            let _ = qemu.0.wait();
        }
    }

    /// The kernel's console output so far, for failure messages.
    pub fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.console).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Reads from the channel until `complete` finds the end of a message (returning its
    /// length); returns that message and keeps the rest.
    fn read_until(&mut self, complete: impl Fn(&[u8]) -> Option<usize>, deadline: Instant, what: &str) -> Vec<u8> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(len) = complete(&self.pending) {
                let rest = self.pending.split_off(len);
                return std::mem::replace(&mut self.pending, rest);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: no answer to `{what}` in time; received so far: {:?}\nconsole:\n{}",
                    self.node,
                    String::from_utf8_lossy(&self.pending),
                    self.console_tail()
                );
            }
            self.channel.set_read_timeout(Some(left.min(Duration::from_millis(500)))).unwrap();
            match self.channel.read(&mut chunk) {
                Ok(0) => {
                    panic!("{}: the VM's channel closed (qemu gone?)\nconsole:\n{}", self.node, self.console_tail())
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("{}: reading the VM's channel: {e}", self.node),
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
