#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/TARGET/*) from the real inputs the
tests already hold: the string literals of the unit tests next to each parser (log lines,
events2 dumps, crm_mon XML, /proc lines...), the stack files of crm-config/, and the protocol
exchanges the clients have with real servers, written out byte by byte from the protocols'
specifications. Run from anywhere: `python3 fuzz/seeds/make.py`; the output is committed.
Regression inputs of fixed findings (`regress-*`) are kept as they are."""

import hashlib
import json
import os
import re
import struct
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def src(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def unescape(body):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n == "\n":  # line continuation: the newline and the next line's indentation go
            i += 2
            while i < len(body) and body[i] in " \t":
                i += 1
            continue
        if n == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3 : end], 16)))
            i = end + 1
            continue
        if n == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
            continue
        out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}[n])
        i += 2
    return "".join(out)


LITERAL = re.compile(r'r(#*)"(.*?)"\1|b?"((?:[^"\\]|\\.)*)"', re.S)


def test_literals(path, min_len=8):
    """The string literals of a file's unit tests (after `#[cfg(test)]`)."""
    text = src(path)
    at = text.find("#[cfg(test)]")
    if at < 0:
        return []
    found = []
    for m in LITERAL.finditer(text[at:]):
        s = m.group(2) if m.group(2) is not None else unescape(m.group(3))
        if len(s) >= min_len:
            found.append(s)
    return found


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    if not name:
        name = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clear(target):
    d = os.path.join(SEEDS, target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            if not f.startswith("regress-"):
                os.remove(os.path.join(d, f))


# ---- text inputs taken from the tests ------------------------------------------------------

TEXT_TARGETS = {
    "log_tail": [
        "agents/service/config_fault.rs", "agents/postgresql.rs", "agents/activemq.rs", "agents/rabbitmq.rs",
        "agents/mycnf.rs", "agents/mariadb.rs", "agents/service/web.rs", "agents/service/checks.rs",
        "src/sys/logtail.rs",
    ],
    "drbd_events2": ["agents/drbd/state.rs", "agents/drbd.rs"],
    "haproxy_stats": ["agents/haproxy.rs"],
    "upsd": ["fence/nut.rs"],
    "crm_mon": ["src/alert/snapshot.rs", "src/alert/findings.rs"],
    "proc_files": ["src/sys/proc.rs", "src/sys/mount.rs", "src/sys/holders.rs", "src/sys/fs_types.rs",
                   "src/sys/tree.rs", "src/sys/listeners.rs"],
    "config_text": ["src/sys/argv.rs", "src/sys/mount_options.rs", "agents/apache.rs", "src/alert/mod.rs",
                    "agents/haproxy.rs"],
    "pid_files": ["agents/postgresql.rs", "fence/serial.rs", "src/sys/identity.rs", "src/sys/locks.rs"],
    "fence_stdin": ["fence/args.rs", "fence/config.rs"],
    "stack_file": ["src/config/validate.rs", "tests/config.rs"],
}

for target in list(TEXT_TARGETS) + ["fence_argv", "ocf_env", "alert_env", "scram", "apcsmart", "pgwire", "mywire",
                                    "stomp", "amqp", "http"]:
    clear(target)

for target, files in TEXT_TARGETS.items():
    for path in files:
        lits = test_literals(path) if not path.startswith("tests/") else [
            unescape(m.group(3)) if m.group(2) is None else m.group(2) for m in LITERAL.finditer(src(path))
        ]
        for s in lits:
            if target == "stack_file" and "[cluster]" not in s:
                continue
            write(target, None, s)

# fence_argv: the command lines of the unit tests, arguments separated by NUL.
for s in test_literals("fence/args.rs", 2) + test_literals("fence/config.rs", 2):
    if s.startswith("-"):
        write("fence_argv", None, "\0".join(s.split()))
for argv in [["-o", "off", "-n", "node2", "--serial-port=/dev/ttyS0"], ["--action=status", "--ip=127.0.0.1",
             "--ups-name=fake", "-l", "admin", "-p", "s3cret", "-u", "13493"], ["-o", "metadata"],
             ["--action", "validate-all", "--serial-port", "/dev/ttyS1", "--hostlist=node1,node2", "--plug", "node1",
              "--power-timeout", "20", "--delay=0.5", "-v"], ["-S", "/usr/local/bin/pw arg", "-a", "::1"]]:
    write("fence_argv", None, "\0".join(argv))
write("fence_stdin", None, "action=reboot\nport=node2\nnodename=node2\nserial_port=/dev/ttyS0\nups_serial=QS0000000001\n"
      "hostlist=node1,node2\npcmk_host_list=node2\nCRM_meta_timeout=60000\n")
write("fence_stdin", None, "action=off\nip=127.0.0.1\nipport=13493\nups_name=fake\nlogin=admin\npasswd=admin\n"
      "transport=nut\npower_timeout=30\ndelay=2.5\nverbose=yes\n")

# Stack files: the shipped examples.
for name in ["stack.toml", "stack-3node.toml"]:
    write("stack_file", name, src(os.path.join("crm-config", name)))
for name in ["corosync.conf", "corosync-3node.conf"]:
    write("config_text", name, src(os.path.join("crm-config", name)))

# OCF environments: every layer of the shipped stacks as its agent would get it.
for name in ["stack.toml", "stack-3node.toml"]:
    stack = tomllib.loads(src(os.path.join("crm-config", name)))
    layers = [l for g in stack.get("group", []) for l in g["layer"]] + [c["layer"] for c in stack.get("clone", [])]
    for layer in layers:
        lines = [layer["agent"]] + [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                                    for k, v in layer.get("params", {}).items()]
        lines += ["CRM_meta_timeout=20000", "CRM_meta_interval=10000", f"OCF_RESOURCE_INSTANCE={layer['id']}"]
        write("ocf_env", None, "\n".join(lines) + "\n")
write("ocf_env", None, "drbd\ndrbd_resource=r0\nCRM_meta_clone=1\nCRM_meta_clone_max=2\nCRM_meta_master_max=1\n"
      "CRM_meta_promotable=true\nCRM_meta_notify=true\nCRM_meta_notify_type=pre\nCRM_meta_notify_operation=promote\n"
      "CRM_meta_notify_promote_uname=node1 node2 \nOCF_CHECK_LEVEL=10\n")
write("ocf_env", None, "app\nstart_command=/opt/app/bin/run --port 8080\nstop_command=sh -c 'kill $(cat /run/app.pid)'\n"
      "pidfile=/run/app.pid\nport=8080\nHA_LOGFACILITY=daemon\nHA_debug=1\n")
write("ocf_env", None, "filesystem\ndevice=/dev/drbd0\ndirectory=/srv/data\nfstype=ext4\n"
      "options=noatime,errors=remount-ro,context=\"a,b\"\nfsck=auto\nforce_unmount=safe\n")

# The alert agent's environment, as the tests run it (tests/alert/mod.rs).
BASE = "CRM_alert_version=2.1.5\nCRM_alert_node_sequence=7\nCRM_alert_timestamp=12:00:00.000000\n" \
       "CRM_alert_timestamp_epoch=1700000000\nCRM_alert_timestamp_usec=123456\nCRM_alert_recipient={r}\n"
for r in ["/var/log/hastack-alerts.log", "ops@example.com,admin@example.com", "https://console.example/reports", ""]:
    base = BASE.format(r=r)
    write("alert_env", None, base + "CRM_alert_kind=node\nCRM_alert_node=node2\nCRM_alert_nodeid=2\nCRM_alert_desc=lost\n")
    write("alert_env", None, base + "CRM_alert_kind=fencing\nCRM_alert_node=node2\nCRM_alert_rc=0\nCRM_alert_desc="
          "Operation reboot of node2 by node1 for pacemaker-controld.811@node1: OK "
          "(ref=4e6a3f5b-9d1c-4b43-9a7e-1f2a3b4c5d6e)\n")
    write("alert_env", None, base + "CRM_alert_kind=resource\nCRM_alert_node=node1\nCRM_alert_rsc=db\n"
          "CRM_alert_task=monitor\nCRM_alert_interval=10000\nCRM_alert_rc=7\nCRM_alert_target_rc=0\n"
          "CRM_alert_status=0\nCRM_alert_exec_time=12\nCRM_alert_desc=not running\n"
          "cluster_id=site1\nsnapshot=off\nsend_timeout=2s\ndeadline=20s\nmin_severity=warning\n")
write("alert_env", None, BASE.format(r="") + "CRM_alert_kind=resource\nCRM_alert_task=monitor\nCRM_alert_interval=10000\n"
      "CRM_alert_rc=0\nCRM_alert_target_rc=0\nCRM_alert_status=0\n")
write("alert_env", None, BASE.format(r="") + "CRM_alert_kind=attribute\nCRM_alert_node=node1\n"
      "CRM_alert_attribute_name=master-drbd\nCRM_alert_attribute_value=10000\n")

# SCRAM: RFC 7677's exchange, then a refusal.
write("scram", None, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\n"
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=\n")
write("scram", None, "r=rOprNGfwEbeRWgbNEkqOxyz,s=QSXCR+Q6sek8bf92,i=16\ne=invalid-proof\n")

# ---- byte streams of the protocols ---------------------------------------------------------

# APC Smart (fence/sim.rs answers): a 0xFF ends one read; an empty piece is a read that found
# nothing (the dialogue drains the line before each command).
FF = b"\xff"
dialogue = [b"", b"SM\r\n", b"", b"QS0000000001\r\n", b"", b"08\r\n", b"", b"40\r\n", b"", b"*"]
write("apcsmart", None, FF.join(dialogue))
write("apcsmart", None, FF.join([b"", b"$S", b"M\r\n!", b"", b"QS00!00000001\r\n", b"%", b"", b"00\r\n", b"", b"NA\r\n"]))
write("apcsmart", None, FF.join([b"", b"\x13\x37garbage\r\n", b"", b"SM\r\n", b"", b"NA\r\n", b"", b"0G\r\n"]))
write("apcsmart", None, FF.join([b"", b"SM\r\n", b"", b"QS1\r\n", b"", b"10\r\n", b"", b"NA\r\n", b"", b"NA\r\n"]))

# upsd replies (NUT's net-protocol documentation and what dummy-ups answers).
write("upsd", None, 'VAR fake ups.status "OL"\nVAR fake driver.name "apcsmart"\nOK TRACKING '
      '1bd31808-cb49-4aec-9d75-d056e6f018d2\nPENDING\nSUCCESS\nVAR fake ups.status "OFF OB LB"\n'
      'ERR ACCESS-DENIED\nERR DATA-STALE\nERR VAR-NOT-SUPPORTED\nVAR fake ups.serial "QS \\"1\\""\nOK\n')


def pg(kind, body):
    return kind + struct.pack(">i", len(body) + 4) + body


ready = pg(b"Z", b"I")
auth_ok = pg(b"R", struct.pack(">i", 0))
params = pg(b"S", b"server_version\x0015.5\x00") + pg(b"K", struct.pack(">ii", 4242, 7))
result = (pg(b"T", struct.pack(">h", 1) + b"?column?\x00" + struct.pack(">ihihih", 0, 0, 23, 4, -1, 0))
          + pg(b"D", struct.pack(">hi", 2, 1) + b"1" + struct.pack(">i", -1)) + pg(b"C", b"SELECT 1\x00") + ready)
error = pg(b"E", b"SFATAL\x00C57P03\x00Mthe database system is starting up\x00\x00")
write("pgwire", None, auth_ok + params + ready + result + result)
write("pgwire", None, pg(b"R", struct.pack(">i", 3)) + auth_ok + ready + pg(b"N", b"SNOTICE\x00Mhello\x00\x00") + result)
write("pgwire", None, pg(b"R", struct.pack(">i", 10) + b"SCRAM-SHA-256\x00\x00")
      + pg(b"R", struct.pack(">i", 11) + b"r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") + pg(b"R", struct.pack(">i", 12) + b"v=AAAA"))
write("pgwire", None, error)
write("pgwire", None, pg(b"R", struct.pack(">i", 5) + b"salt"))
write("pgwire", None, auth_ok + ready + pg(b"E", b"SERROR\x00C42P01\x00Mrelation does not exist\x00\x00") + ready)


def my(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


greeting = (b"\x0a" + b"10.11.6-MariaDB-0+deb12u1\x00" + struct.pack("<I", 42) + b"abcdefgh\x00"
            + struct.pack("<H", 0xf7fe) + b"\x2d" + struct.pack("<H", 2) + struct.pack("<H", 0x81ff) + b"\x15"
            + b"\x00" * 6 + struct.pack("<I", 0) + b"ijklmnopqrst\x00" + b"mysql_native_password\x00")
ok = b"\x00\x00\x00\x02\x00\x00\x00"
eof = b"\xfe\x00\x00\x02\x00"
coldef = b"\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00"
query = my(1, b"\x01") + my(2, coldef) + my(3, eof) + my(4, b"\x011") + my(5, eof)
write("mywire", None, my(0, greeting) + my(2, ok) + query + query)
write("mywire", None, my(0, greeting) + my(2, b"\xfeunix_socket\x00") + my(4, ok) + my(1, ok))
write("mywire", None, my(0, b"\xff\x15\x04#28000Access denied for user 'root'@'localhost'"))
write("mywire", None, my(0, greeting) + my(2, ok) + my(1, b"\xff\x7a\x04#42S02Table 'x' doesn't exist"))


def stomp(command, headers, body=""):
    return (command + "\n" + "".join(f"{k}:{v}\n" for k, v in headers) + "\n" + body + "\0").encode()


connected = stomp("CONNECTED", [("version", "1.2"), ("server", "ActiveMQ/5.17.6"), ("heart-beat", "0,0")])
write("stomp", None, connected + stomp("RECEIPT", [("receipt-id", "hastack-send")])
      + b"\n\n" + stomp("MESSAGE", [("destination", "/queue/hastack-health"), ("message-id", "ID\\c1"),
                                    ("subscription", "0")], "ping"))
write("stomp", None, stomp("ERROR", [("message", "Authentication failed")], "User name [x] or password is invalid."))
write("stomp", None, connected + stomp("MESSAGE", [("destination", "/queue/hastack-health")], "old")
      + stomp("ERROR", [("message", "queue full\\nretry")]))


def amqp_frame(kind, channel, payload):
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def method(channel, cls, m, args=b""):
    return amqp_frame(1, channel, struct.pack(">HH", cls, m) + args)


def short(s):
    return bytes([len(s)]) + s


start = method(0, 10, 10, b"\x00\x09" + struct.pack(">I", 0) + struct.pack(">I", 5) + b"PLAIN" + struct.pack(">I", 5) + b"en_US")
tune = method(0, 10, 30, struct.pack(">HIH", 2047, 131072, 60))
open_ok = method(0, 10, 41, short(b""))
channel = method(1, 20, 11, struct.pack(">I", 0)) + method(1, 85, 11) + method(1, 50, 11, short(b"hastack-health") + struct.pack(">II", 0, 0))
ack = method(1, 60, 80, struct.pack(">QB", 1, 0))
get_ok = (method(1, 60, 71, struct.pack(">QB", 1, 0) + short(b"") + short(b"hastack-health") + struct.pack(">I", 0))
          + amqp_frame(2, 1, struct.pack(">HHQH", 60, 0, 4, 0x1000) + b"\x02") + amqp_frame(3, 1, b"ping"))
write("amqp", None, start + tune + open_ok + channel + amqp_frame(8, 0, b"") + ack + get_ok + method(0, 10, 51))
write("amqp", None, start + method(0, 10, 50, struct.pack(">H", 403) + short(b"ACCESS_REFUSED - Login was refused") + struct.pack(">HH", 10, 11)))
write("amqp", None, start + tune + open_ok + channel + ack + method(1, 60, 72, short(b"")))
write("amqp", None, b"AMQP\x00\x00\x09\x01")

write("http", None, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
write("http", None, b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nyet\r\n\r\n0\r\n\r\n")
write("http", None, b"HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:8080/login\r\n\r\n")
write("http", None, b"http://[::1]:8080/server-status?auto")

# ---- the console's report bodies ------------------------------------------------------------

# The documented example, and reports built from it as the alert agent would write them: each
# with the idempotency key of its fields (docs/reports.md's recipe), so the fuzzer starts past
# the key check; then what a console must refuse.
def report_key(r):
    e, a = r["event"], r["event"]["alert"]
    opt = lambda v: "" if v is None else str(v)
    fields = ["hastack-report-v1", r["cluster"]["id"], r["reporter"]["node"], str(e["time"]["epoch"]),
              "%06d" % e["time"]["usec"], opt(e["time"]["node_sequence"]), e["kind"], opt(a["node"]),
              opt(a["rsc"]), opt(a["task"]), opt(a["interval"]), opt(a["rc"])]
    return hashlib.sha256("".join(f + "\n" for f in fields).encode()).hexdigest()


def report(r):
    r["idempotency_key"] = report_key(r)
    return json.dumps(r, indent=1)


clear("console_report")
example = json.loads(src("docs/report-example.json"))
write("console_report", None, src("docs/report-example.json"))
started = json.loads(json.dumps(example))
started["reporter"] = {"node": "beta", "hostname": "beta"}
started["event"].update(category="operation_succeeded", severity="info", summary="orders-app start on beta ok")
started["event"]["time"]["epoch"] += 31
started["event"]["alert"].update(node="beta", task="start", rc=0, interval=0)
write("console_report", None, report(started))
lost = json.loads(json.dumps(example))
lost["event"].update(kind="node", category="node_lost", severity="critical", summary="alpha lost")
lost["event"]["alert"].update(node="alpha", rsc=None, task=None, rc=None, interval=None, target_rc=None, nodeid="1")
lost["snapshot"].update(xml=None, error="crm_mon timed out", exit_code=None)
write("console_report", None, report(lost))
fenced = json.loads(json.dumps(lost))
fenced["event"].update(kind="fencing", category="fencing_succeeded", summary="alpha fenced by beta")
fenced["event"]["fencing"] = {"action": "reboot", "target": "alpha", "executioner": "beta", "client": "pacemaker-controld",
                              "origin": "beta", "status": "OK", "reason": None, "ref": "1a2b", "succeeded": True}
write("console_report", None, report(fenced))
future = json.loads(json.dumps(example))
future["event"]["time"]["epoch"] += 10 * 365 * 86400
write("console_report", None, report(future))
write("console_report", None, src("docs/report-example.json")[:300])
write("console_report", None, '{"schema": "hastack.alert-report", "schema_version": 2}')

print("seeds written to", SEEDS)
