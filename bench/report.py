"""Turns bench/run.sh's raw numbers into the markdown report and the latency
CDF picture.

Input: a TSV of (section, case, metric, repeat, value) rows. Each figure is
shown as the median over the repeats with the spread (min-max), and set
against the kernel's (and, for latency, the raw AF_XDP floor's) as a ratio.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
from collections import defaultdict


def load(path):
    data = defaultdict(list)
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 5:
            continue
        section, case, metric, _, value = parts
        try:
            data[(section, case, metric)].append(float(value))
        except ValueError:
            pass
    return data


def med(data, key):
    v = data.get(key)
    return statistics.median(v) if v else None


def fmt(x, digits=2):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def cell(data, key, digits=2):
    v = data.get(key)
    if not v:
        return "-"
    m = statistics.median(v)
    if len(v) == 1:
        return fmt(m, digits)
    return f"{fmt(m, digits)} ({fmt(min(v), digits)}-{fmt(max(v), digits)})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def machine():
    cpu = "?"
    cores = os.cpu_count()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = "?"
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return cpu, cores, platform.release(), distro


def cdf_picture(cdf_dir, out_png):
    series = [("floor", "raw AF_XDP floor"), ("xdpload", "xdpload <-> xdpload"),
              ("client", "xdpload client -> kernel server"), ("kernel", "kernel <-> kernel")]
    plots = []
    for name, title in series:
        path = os.path.join(cdf_dir, f"cdf-{name}.ns")
        if not os.path.exists(path):
            continue
        vals = sorted(int(x) for x in open(path) if x.strip().isdigit())
        if not vals:
            continue
        dat = os.path.join(cdf_dir, f"cdf-{name}.dat")
        n = len(vals)
        step = max(1, n // 4000)
        with open(dat, "w") as f:
            for i in range(0, n, step):
                f.write(f"{vals[i] / 1000:.3f} {(i + 1) / n:.6f}\n")
            f.write(f"{vals[-1] / 1000:.3f} 1.0\n")
        plots.append(f"'{dat}' using 1:2 with lines lw 2 title '{title}'")
    if not plots:
        return False
    script = f"""
set terminal pngcairo size 900,560 font ',11'
set output '{out_png}'
set title 'UDP ping-pong round trip, 64-byte messages, both ends spinning (veth)'
set xlabel 'round trip (microseconds, log scale)'
set ylabel 'fraction of round trips'
set logscale x
set xrange [1:200]
set yrange [0:1]
set grid
set key bottom right
plot {', '.join(plots)}
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--commands")
    ap.add_argument("--cdf-dir")
    ap.add_argument("--profile")
    ap.add_argument("--seconds")
    ap.add_argument("--repeats")
    ap.add_argument("--elapsed")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    d = load(a.raw)
    cpu, cores, kernel, distro = machine()
    out = []
    w = out.append
    w(f"# xdpload benchmarks, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n")
    w(f"- machine: {cpu}, {cores} cores; {distro}; kernel {kernel}")
    w("- network: two namespaces joined by a veth pair, AF_XDP on veth "
      "(XDP in driver mode, copy mode: veth has no zero-copy)")
    w(f"- each figure: median over {a.repeats} runs of {a.seconds} s, spread (min-max) in "
      f"brackets; whole run {a.elapsed} s")
    w("- latency: round trip in microseconds (sockperf --full-rtt), 64-byte messages\n")

    # ---- latency ----
    lat_cases = sorted({k[1] for k in d if k[0] == "latency"})
    if lat_cases:
        w("## Ping-pong latency (round trip, us)\n")
        w("kernel: both ends on the kernel; client: the client under xdpload, the server on "
          "the kernel; xdpload: both ends under xdpload; floor: raw AF_XDP ping-pong on rings/ "
          "(no lwIP, no shim). spinning: sockperf --nonblocked on both ends and xdpload's "
          "latency profile; blocking: sockperf's blocking calls and xdpload's default "
          "profile. lean: bench/udp_pingpong instead of sockperf (a non-blocking recvfrom spin "
          "and a sendto, nothing else), on the kernel or under xdpload. The server runs on CPU "
          "0, the client on CPU 1 (taskset, or xdpload --cpu).\n")
        w("| proto | mode | pairing | p50 | p99 | p99.9 | max | p50 vs kernel | p99 vs kernel "
          "| p99.9 vs kernel | p50 vs floor | p99 vs floor |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for proto in ("udp", "tcp"):
            for mode in ("spinning", "blocking"):
                for pairing in ("kernel", "client", "xdpload", "lean kernel", "lean xdpload", "floor"):
                    c = f"{proto} {mode} {pairing}"
                    if ("latency", c, "p50") not in d:
                        continue
                    k = f"{proto} {mode} {'lean ' if pairing.startswith('lean') else ''}kernel"
                    f = "udp spinning floor"
                    vs = lambda m, base: ratio(med(d, ("latency", c, m)), med(d, ("latency", base, m)))
                    fl = (vs("p50", f), vs("p99", f)) if pairing != "floor" and proto == "udp" and mode == "spinning" else ("-", "-")
                    kk = (vs("p50", k), vs("p99", k), vs("p99.9", k)) if not pairing.endswith("kernel") else ("-", "-", "-")
                    w(f"| {proto} | {mode} | {pairing} | {cell(d, ('latency', c, 'p50'))} | "
                      f"{cell(d, ('latency', c, 'p99'))} | {cell(d, ('latency', c, 'p99.9'))} | "
                      f"{cell(d, ('latency', c, 'max'))} | {kk[0]} | {kk[1]} | {kk[2]} | {fl[0]} | {fl[1]} |")
        w("")

    # ---- targets ----
    def m(c, metric, section="latency"):
        return med(d, (section, c, metric))

    rows = []
    # The latency issue's targets: UDP p50 and p99 within 1.1x the raw floor
    # (p99.9 within 1.2x) and at most half the kernel's; TCP p50 and p99 at
    # most 0.55x the kernel's.
    f = "udp spinning floor"
    for x, who in (("udp spinning xdpload", "xdpload"), ("udp spinning lean xdpload", "lean xdpload")):
        for metric in ("p50", "p99", "p99.9"):
            bound = 1.2 if metric == "p99.9" else 1.1
            if m(x, metric) and m(f, metric):
                r = m(x, metric) / m(f, metric)
                rows.append((f"UDP spinning {metric}: {who} within {bound}x the floor", f"{r:.2f}x",
                             "met" if r <= bound else "not met"))
    for proto, bound in (("udp", 0.5), ("tcp", 0.55)):
        x, k = f"{proto} spinning xdpload", f"{proto} spinning kernel"
        for metric in ("p50", "p99"):
            if m(x, metric) and m(k, metric):
                r = m(x, metric) / m(k, metric)
                rows.append((f"{proto.upper()} spinning {metric}: xdpload at most {bound}x the kernel's",
                             f"{r:.2f}x", "met" if r <= bound else "not met"))
    rk = m("udp64 kernel", "Mmsg/s received", "throughput")
    rx = m("udp64 xdpload", "Mmsg/s received", "throughput")
    if rk and rx:
        rows.append(("64-byte UDP rate over twice the kernel's", f"{rx / rk:.2f}x",
                     "met" if rx / rk > 2 else "not met"))
    for proto in ("udp", "tcp"):
        bk, bx = m(f"{proto} blocking kernel", "p50"), m(f"{proto} blocking xdpload", "p50")
        if bk and bx:
            rows.append((f"{proto.upper()} blocking p50 no worse than the kernel's", f"{bx / bk:.2f}x",
                         "met" if bx <= bk * 1.05 else "not met"))
    if rows:
        w("## Targets\n")
        w("| target | reached | |")
        w("|---|---|---|")
        for t, r, s in rows:
            w(f"| {t} | {r} | {s} |")
        w("")

    # ---- throughput ----
    thr = [("tcp", "Gbit/s"), ("tcp", "retransmits"), ("udp", "Gbit/s received"),
           ("udp", "loss %"), ("udp64", "Mmsg/s received"), ("udp64", "loss %")]
    if any(("throughput", f"{kind} kernel", metric) in d for kind, metric in thr):
        w("## Throughput (iperf3, both ends kernel or both under xdpload)\n")
        w("udp: -u -b 0 -l 1400; udp64: -u -b 0 -l 64 (the 64-byte message rate); rates are "
          "what the receiver got. xdpload with the throughput profile.\n")
        w("| test | metric | kernel | xdpload | xdpload / kernel |")
        w("|---|---|---|---|---|")
        for kind, metric in thr:
            kk, xx = ("throughput", f"{kind} kernel", metric), ("throughput", f"{kind} xdpload", metric)
            if kk in d or xx in d:
                w(f"| {kind} | {metric} | {cell(d, kk)} | {cell(d, xx)} | {ratio(med(d, xx), med(d, kk))} |")
        w("")

    # ---- queues ----
    if any(k[0] == "queues" for k in d):
        w("## One queue and four (xdpload at both ends, same run)\n")
        w("The same ping-pongs and iperf3 on a veth pair with 1 queue each way and on one "
          "with 4 (the default test network: flows spread over the queues by hash, as RSS "
          "does). Targets: 4-queue latency within 1.1x of 1-queue; throughput no lower "
          "(met: within the 5 % that separates runs of the same case).\n")
        w("| test | metric | 1 queue | 4 queues | 4q / 1q | target |")
        w("|---|---|---|---|---|---|")
        for proto in ("udp", "tcp"):
            for mode in ("spinning", "blocking"):
                for metric in ("p50", "p99"):
                    one, four = ("queues", f"{proto} {mode} 1q", metric), ("queues", f"{proto} {mode} 4q", metric)
                    if one in d or four in d:
                        r = med(d, four) / med(d, one) if med(d, four) and med(d, one) else None
                        verdict = "" if r is None else ("met" if r <= 1.1 else "not met")
                        w(f"| {proto} {mode} latency | {metric} us | {cell(d, one)} | {cell(d, four)} | "
                          f"{ratio(med(d, four), med(d, one))} | {verdict} |")
        for kind, metric in (("tcp", "Gbit/s"), ("udp64", "Mmsg/s received")):
            one, four = ("queues", f"{kind} 1q", metric), ("queues", f"{kind} 4q", metric)
            if one in d or four in d:
                r = med(d, four) / med(d, one) if med(d, four) and med(d, one) else None
                verdict = "" if r is None else ("met" if r >= 0.95 else "not met")
                w(f"| {kind} iperf3 | {metric} | {cell(d, one)} | {cell(d, four)} | "
                  f"{ratio(med(d, four), med(d, one))} | {verdict} |")
        w("")

    # ---- broker ----
    if any(k[0] == "broker" for k in d):
        w("## Through the broker (same run)\n")
        w("sockperf UDP ping-pong, the server in A under xdpload alone on the interface (its own "
          "XDP program, root) and as a program of `xdpload daemon` (the broker's XDP program, "
          "UMEM and fill rings; its own AF_XDP sockets); the client in B under xdpload. "
          "Target: within 1.05x.\n")
        w("| test | metric | alone | broker | broker / alone | target |")
        w("|---|---|---|---|---|---|")
        for mode in ("spinning", "blocking"):
            for metric in ("p50", "p99", "p99.9"):
                alone, brk = ("broker", f"udp {mode} alone", metric), ("broker", f"udp {mode} broker", metric)
                if alone in d or brk in d:
                    r = med(d, brk) / med(d, alone) if med(d, alone) and med(d, brk) else None
                    verdict = "" if r is None or metric != "p50" else ("met" if r <= 1.05 else "not met")
                    w(f"| udp {mode} latency | {metric} us | {cell(d, alone)} | {cell(d, brk)} | "
                      f"{ratio(med(d, brk), med(d, alone))} | {verdict} |")
        w("")

    # ---- tuned ----
    if any(k[0] == "tuned" for k in d):
        w("## Host settings (same run)\n")
        w("sockperf UDP ping-pong, both ends under xdpload (server CPU 0, client CPU 1), as they "
          "are and with `--rt 10 --mlock` (SCHED_FIFO 10, the progress thread 11; all memory "
          "locked). On a host `xdpload tune` finds untuned, as this VM is.\n")
        w("| test | metric | plain | --rt --mlock | tuned / plain |")
        w("|---|---|---|---|---|")
        for mode in ("spinning", "blocking"):
            for metric in ("p50", "p99", "p99.9", "max"):
                plain, tuned = ("tuned", f"udp {mode} plain", metric), ("tuned", f"udp {mode} rt-mlock", metric)
                if plain in d or tuned in d:
                    w(f"| udp {mode} latency | {metric} us | {cell(d, plain)} | {cell(d, tuned)} | "
                      f"{ratio(med(d, tuned), med(d, plain))} |")
        w("")

    # ---- servers ----
    srv = sorted({k[1].rsplit(" ", 1)[0] for k in d if k[0] == "servers"})
    if srv:
        w("## Servers (the server under xdpload or not; the load generator on the kernel)\n")
        w("| server | metric | kernel | xdpload | xdpload / kernel |")
        w("|---|---|---|---|---|")
        for s in srv:
            for metric in ("req/s", "p99 us", "fork us", "fork p99 us", "us per connection"):
                kk, xx = ("servers", f"{s} kernel", metric), ("servers", f"{s} xdpload", metric)
                if kk in d or xx in d:
                    w(f"| {s} | {metric} | {cell(d, kk, 0)} | {cell(d, xx, 0)} | {ratio(med(d, xx), med(d, kk))} |")
        w("")

    # ---- sendfile ----
    if any(k[0] == "sendfile" for k in d):
        w("## sendfile (nginx, sendfile on, serving 1 GiB three times to curl on the kernel)\n")
        w("copy: xdpload with XDPLOAD_SENDFILE=copy (the file through a buffer, then into "
          "frames: two copies, as before io_uring); frames: the file read by io_uring straight "
          "into the transmit frames it is sent from (one copy). CPU: nginx's user and system "
          "time, all threads, per GB served.\n")
        w("| metric | kernel | xdpload copy | xdpload frames | frames / copy | frames / kernel |")
        w("|---|---|---|---|---|---|")
        for metric in ("Gbit/s", "CPU s per GB"):
            kk, cc, ff = (("sendfile", f"nginx 1GiB {p}", metric) for p in ("kernel", "copy", "frames"))
            w(f"| {metric} | {cell(d, kk)} | {cell(d, cc)} | {cell(d, ff)} | "
              f"{ratio(med(d, ff), med(d, cc))} | {ratio(med(d, ff), med(d, kk))} |")
        w("")

    # ---- zero-copy calls ----
    if any(k[0] == "zerocopy" for k in d):
        w("## Zero-copy calls (1 GiB each way between a program in A and socat on the kernel in B)\n")
        w("The program in A sums every byte it receives and writes a pattern into what it "
          "sends. copy: recv()/send() through a 64 KB buffer under xdpload; zc: xdpload_zc_recv "
          "(summed in place, in the frames the data arrived in) and xdpload_zc_alloc/_send (the "
          "pattern written into lent transmit frames). CPU: the A program's user and system time "
          "per GB.\n")
        w("| way | metric | kernel | xdpload copy | xdpload zc | zc / copy | zc / kernel |")
        w("|---|---|---|---|---|---|---|")
        for way in ("recv", "send"):
            for metric in ("Gbit/s", "CPU s per GB"):
                kk, cc, zz = (("zerocopy", f"1GiB {way} {p}", metric) for p in ("kernel", "copy", "zc"))
                w(f"| {way} | {metric} | {cell(d, kk)} | {cell(d, cc)} | {cell(d, zz)} | "
                  f"{ratio(med(d, zz), med(d, cc))} | {ratio(med(d, zz), med(d, kk))} |")
        w("")

    # ---- receive timestamps ----
    if any(k[0] == "stamps" for k in d):
        w("## Receive timestamps (the lean UDP ping-pong, both ends spinning, same run)\n")
        w("stamped: both ends ask for SO_TIMESTAMPING rx software stamps and read them with "
          "recvmsg; plain: recvfrom. Target: xdpload stamped within 1.05x of plain.\n")
        w("| pairing | metric | plain | stamped | stamped / plain | target |")
        w("|---|---|---|---|---|---|")
        for pairing in ("kernel", "xdpload"):
            for metric in ("p50", "p99", "p99.9"):
                pl, st = ("stamps", f"lean {pairing} plain", metric), ("stamps", f"lean {pairing} stamped", metric)
                if pl in d or st in d:
                    r = med(d, st) / med(d, pl) if med(d, st) and med(d, pl) else None
                    verdict = "" if r is None or pairing == "kernel" else ("met" if r <= 1.05 else "not met")
                    w(f"| {pairing} | {metric} us | {cell(d, pl)} | {cell(d, st)} | {ratio(med(d, st), med(d, pl))} | {verdict} |")
        hw = [("stamps", "lean xdpload hw-stamped", m) for m in ("p50", "p99", "p99.9")]
        if any(k in d for k in hw):
            w("\nhw-stamped: xdpload with XDPLOAD_HW_STAMPS=1 (the stamping XDP program, bound to "
              "the device) and the hardware flags asked for too; veth gives no stamp, so this is "
              "the cost of taking them.\n")
            w("| metric | stamped | hw-stamped | hw-stamped / stamped |")
            w("|---|---|---|---|")
            for k in hw:
                st = ("stamps", "lean xdpload stamped", k[2])
                w(f"| {k[2]} us | {cell(d, st)} | {cell(d, k)} | {ratio(med(d, k), med(d, st))} |")
        w("")
        off = ("stamps", "offset from the kernel's stamp", "us")
        if off in d:
            gap = ("stamps", "gap between the two frames", "us")
            w("xdpload's receive stamp against the kernel's for frames that arrive together (pairs "
              "of datagrams from B, one to a socket on the stack, one to a socket a rule leaves "
              "with the kernel, in one process; bench/stamp_offset.cc): positive when xdpload's "
              "stamp is later.\n")
            w("| figure | us |")
            w("|---|---|")
            w(f"| offset of xdpload's stamp from the kernel's | {cell(d, off)} |")
            w(f"| gap between the two frames of a pair | {cell(d, gap)} |")
            w("")

    # ---- loss ----
    rates = sorted({k[1].rsplit(" ", 2)[0] for k in d if k[0] == "loss"}, key=float)
    if rates:
        w("## TCP through a lossy wire (50 MB A->B, seconds; tc_loss.bpf.c drops frames both "
          "ways on B's veth; TSO/GSO off)\n")
        w("Both senders on CUBIC (Linux's default; asked for per socket). Target: xdpload at "
          "most 1.5x the kernel's time at every loss rate. Reference: the kernel on bbr, "
          "which does not take loss for congestion.\n")
        w("| loss | kernel s | xdpload s | xdpload / kernel | target | kernel bbr s |")
        w("|---|---|---|---|---|---|")
        for rate in rates:
            kk, xx = ("loss", f"{rate} % kernel", "s"), ("loss", f"{rate} % xdpload", "s")
            bb = ("loss", f"{rate} % bbr", "s")
            r = med(d, xx) / med(d, kk) if med(d, xx) and med(d, kk) else None
            verdict = "" if r is None else ("met" if r <= 1.5 else "not met")
            w(f"| {rate} % | {cell(d, kk)} | {cell(d, xx)} | {ratio(med(d, xx), med(d, kk))} | "
              f"{verdict} | {cell(d, bb)} |")
        w("")
        fl, fr = ("loss", "0 % floor", "s"), ("loss", "0 % floor", "received")
        if med(d, fl):
            kk, xx = ("loss", "0 % kernel", "s"), ("loss", "0 % xdpload", "s")
            w("The floor under the lossless transfer: the same 34,531 frames of 1514 bytes sent raw "
              "from an AF_XDP port (bench/xsk_bulk.cc: no TCP, no ACKs, no waiting) to a UDP "
              "socket in B. In copy mode every kick makes each frame an skb and copies it, and on "
              "veth runs B's stack too: no AF_XDP sender on this wire gets its frames out "
              "faster.\n")
            w("| raw floor s | floor / kernel | xdpload / floor | datagrams read in B |")
            w("|---|---|---|---|")
            w(f"| {cell(d, fl)} | {ratio(med(d, fl), med(d, kk))} | {ratio(med(d, xx), med(d, fl))} | "
              f"{cell(d, fr, 0)} of 34,531 |")
            w("")

    reorder = ("reorder", "1 % kernel", "s"), ("reorder", "1 % xdpload", "s")
    if med(d, reorder[0]) or med(d, reorder[1]):
        w("## TCP through a reordering wire (50 MB A->B, seconds; tc_reorder.bpf.c holds 1 % of "
          "A's data segments behind the next two frames; no loss)\n")
        w("| reordered | kernel s | xdpload s | xdpload / kernel |")
        w("|---|---|---|---|")
        w(f"| 1 % | {cell(d, reorder[0])} | {cell(d, reorder[1])} | "
          f"{ratio(med(d, reorder[1]), med(d, reorder[0]))} |")
        w("")

    # ---- idle servers and timed events: figures the tests no longer time ----
    idle = sorted({k[1].rsplit(" ", 1)[0] for k in d if k[0] == "idle"})
    if idle:
        w("## Idle servers (share of one CPU over the idle interval, all threads; no traffic "
          "after one exchange)\n")
        w("| server | kernel | xdpload | xdpload / kernel |")
        w("|---|---|---|---|")
        for s in idle:
            kk, xx = ("idle", f"{s} kernel", "CPU %"), ("idle", f"{s} xdpload", "CPU %")
            w(f"| {s} | {cell(d, kk)} | {cell(d, xx)} | {ratio(med(d, xx), med(d, kk))} |")
        w("")
    events = sorted({(k[1], k[2]) for k in d if k[0] == "events"})
    if events:
        w("## How long things take (median, spread)\n")
        w("| event | unit | value |")
        w("|---|---|---|")
        for c, metric in events:
            w(f"| {c} | {metric} | {cell(d, ('events', c, metric))} |")
        w("")

    # ---- clock ----
    clocks = sorted({k[1] for k in d if k[0] == "clock"})
    if clocks:
        w("## Clock (ns per call; Google Benchmark, median of 3)\n")
        w("vdso: the real libc call; tsc: served from the TSC with ordered reads (default); "
          "tsc-fast: unfenced reads. COARSE clocks and time() pass through to the vDSO.\n")
        w("| call | vdso | tsc | tsc-fast | tsc / vdso | tsc-fast / vdso |")
        w("|---|---|---|---|---|---|")
        for c in clocks:
            v, t, tf = (med(d, ("clock", c, f"{n} ns")) for n in ("vdso", "tsc", "tsc-fast"))
            w(f"| {c} | {fmt(v)} | {fmt(t)} | {fmt(tf)} | {ratio(t, v)} | {ratio(tf, v)} |")
        w("")

    # ---- startup ----
    starts = [k[1] for k in d if k[0] == "startup"]
    if starts:
        w("## Start-up cost (hyperfine, median ms)\n")
        w("`xdpload` runs the wrapper script (bash) before the exec; LD_PRELOAD alone shows the "
          "library's own cost (loading, configuration, TSC calibration check), measured "
          "against `env true` since both run through env.\n")
        w("| command | ms | over the plain program |")
        w("|---|---|---|")
        base = {"true": med(d, ("startup", "true", "ms")),
                "python3 -c pass": med(d, ("startup", "python3 -c pass", "ms")),
                "python3 one TCP connection": med(d, ("startup", "python3 one TCP connection", "ms"))}
        for c in starts:
            v = med(d, ("startup", c, "ms"))
            plain = base["true"]
            for b in base:
                if c.endswith(b) and b != "true":
                    plain = base[b]
            if c.startswith("LD_PRELOAD") and med(d, ("startup", "env true", "ms")) is not None:
                plain = med(d, ("startup", "env true", "ms"))
            extra = f"+{v - plain:.2f} ms" if plain is not None and c not in base and c != "env true" else "-"
            w(f"| `{c}` | {fmt(v)} | {extra} |")
        w("")
        w("`python3 -c pass` opens no socket, so the stack never starts there; `one TCP "
          "connection` (to socat in B) pays for the stack's start (UMEM, AF_XDP sockets, the XDP "
          "program) and end (the connection finished, sockets and link released).\n")

    # ---- where the time goes ----
    lwip = med(d, ("stages", "BM_UdpRoundTrip/64", "ns"))
    sp, ln, fl = (m(f"udp spinning {p}", "p50") for p in ("xdpload", "lean xdpload", "floor"))
    if lwip or a.profile:
        w("## Where the time goes\n")
    if lwip and sp and ln and fl:
        w("The UDP spinning round trip (p50), taken apart. The stack's share is measured "
          "without the kernel: bench/stack_path_bench runs two stacks in one process over the "
          "FakeLink test double (a memcpy for the wire), one datagram there and back through "
          "lwIP and the netif driver (headers, checksums, frames).\n")
        w("| | us |")
        w("|---|---|")
        w(f"| sockperf under xdpload | {sp:.2f} |")
        w(f"| sockperf's own work (sockperf minus lean) | {round(sp - ln, 2) + 0.0:.2f} |")
        w(f"| lean program under xdpload | {ln:.2f} |")
        w(f"| the raw AF_XDP floor (same kernel path: kick, veth, XDP, copy) | {fl:.2f} |")
        w(f"| xdpload's cost (lean minus floor) | {ln - fl:.2f} |")
        w(f"| of which lwIP and the driver, both ways (stack_path_bench) | {lwip / 1000:.2f} |")
        w(f"| of which the socket calls, locks and polling (the rest) | {ln - fl - lwip / 1000:.2f} |")
        ep = med(d, ("stages", "BM_EmptyPoll", "ns"))
        if ep:
            w(f"\nAn empty stack poll costs {ep:.1f} ns; 1400-byte round trip through the stack: "
              f"{med(d, ('stages', 'BM_UdpRoundTrip/1400', 'ns')) / 1000:.2f} us.\n")
        tcp = med(d, ("stages", "BM_TcpRoundTrip/64", "ns"))
        if tcp:
            w(f"TCP through the same two stacks (a 64-byte message and its echo, lwIP's raw API): "
              f"{tcp / 1000:.2f} us, {(tcp - lwip) / 1000:.2f} us more than UDP.\n")
    if a.profile and os.path.exists(a.profile) and os.path.getsize(a.profile):
        w("CPU profile (perf, cpu-clock, self time by symbol) of the sockperf server under "
          "xdpload in the spinning UDP ping-pong; the kernel's share is the veth/XDP/AF_XDP copy "
          "path that the floor pays too.\n")
        w("```")
        for line in open(a.profile):
            w(line.rstrip())
        w("```\n")

    # ---- CDF ----
    png = a.out + "-cdf.png"
    if a.cdf_dir and cdf_picture(a.cdf_dir, png):
        w("## Latency distribution\n")
        w(f"![UDP ping-pong round-trip CDF]({os.path.basename(png)})\n")

    if a.commands and os.path.exists(a.commands):
        w("## Commands\n")
        w("```")
        for line in open(a.commands):
            w(line.rstrip())
        w("```")
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
