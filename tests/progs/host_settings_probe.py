# What the host settings of xdpload --rt/--mlock/--numa/--progress-cpu did to
# the process running this, seen from inside it, as JSON on stdout.
#   python3 host_settings_probe.py [IP | -]
# With IP: binds a UDP socket there first (accelerated: the stack and its
# progress thread start) and reports the progress thread and the UMEM. With
# -: makes a UDP socket (where xdpload says what it refused) and no more.
import ctypes, json, os, socket, sys, threading, time

out = {}
out["main"] = [os.sched_getscheduler(0), os.sched_getparam(0).sched_priority]
out["main_cpus"] = sorted(os.sched_getaffinity(0))
seen = {}
def thread():
    seen["thread"] = [os.sched_getscheduler(0), os.sched_getparam(0).sched_priority]
t = threading.Thread(target=thread)
t.start()
t.join()
out["thread"] = seen["thread"]

libc = ctypes.CDLL(None, use_errno=True)
mode = ctypes.c_int()
mask = (ctypes.c_ulong * 16)()
SYS_get_mempolicy = 239
libc.syscall(SYS_get_mempolicy, ctypes.byref(mode), mask, 1024, None, 0)
out["mempolicy"] = [mode.value, mask[0]]   # MPOL_BIND is 2; mask bit n: node n

for line in open("/proc/self/status"):
    if line.startswith("VmLck:"):
        out["vmlck_kb"] = int(line.split()[1])

# A child made by fork() (no exec): its memory locks are its own to make.
r, w = os.pipe()
child = os.fork()
if child == 0:
    kb = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmLck:")]
    os.write(w, str(kb[0]).encode())
    os._exit(0)
os.close(w)
os.waitpid(child, 0)
out["child_vmlck_kb"] = int(os.read(r, 64) or b"-1")

if sys.argv[1:] == ["-"]:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
elif len(sys.argv) > 1:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 0))
    progress = None
    for _ in range(100):
        for tid in os.listdir("/proc/self/task"):
            if open("/proc/self/task/%s/comm" % tid).read().strip() == "xdpload-bg":
                progress = int(tid)
        if progress:
            break
        time.sleep(0.02)
    if progress:
        time.sleep(0.1)  # it places itself first thing
        out["progress"] = [os.sched_getscheduler(progress), os.sched_getparam(progress).sched_priority,
                           sorted(os.sched_getaffinity(progress))]
    # The UMEM: the largest shared mapping of /dev/zero (anonymous shared).
    umem = []
    for line in open("/proc/self/numa_maps"):
        if "/dev/zero" in line or "huge" in line:
            umem.append(line.split())
    out["umem"] = [[w for w in u if w.startswith(("bind", "prefer", "default", "N"))] for u in umem]
    # A child forked now has the 4 GiB family arena open for writing: its
    # memory locks (--mlock) must not fill it. Its largest shared mapping but
    # the UMEM, in pages present.
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        most = 0
        for line in open("/proc/self/numa_maps"):
            if "/dev/zero" in line:
                for word in line.split():
                    if word.startswith("N0=") and word != "N0=16384":
                        most = max(most, int(word[3:]))
        os.write(w, str(most).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    out["child_shared_pages"] = int(os.read(r, 64) or b"-1")
    s.close()
print(json.dumps(out))
