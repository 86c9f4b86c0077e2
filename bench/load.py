#!/usr/bin/env python3
"""Load harness: the upstream directly, the Rampart gateway in front of it, and nginx in front
of it, driven by wrk in interleaved rounds on the same machine.

    python3 bench/load.py [--rounds 5] [--duration 10] [--connections 64] [--pin]
                          [--targets gateway,nginx]

Installs wrk and nginx from Debian's packages when missing, builds the release gateway and
the bench upstream, and prints the median requests/s, p50 and p99 latency of each target and
the ratios gateway/direct and gateway/nginx. nginx runs twice: as a bare reverse proxy
("nginx"), and also setting the headers the gateway sets on every request and response
("nginx+hdr": X-Forwarded-For, -Proto, -Host, X-Request-Id both ways, Via), which is the same
work per request. Each run also reads the CPU time (user and system) that the process behind
the target spent, from /proc, and divides it by the requests served: the cost of a request,
which a busy machine disturbs less than req/s, split into the proxy's own code and the kernel's
socket work. A bare hyper proxy ("bare", examples/bench_bare_proxy.rs: no routing, no
header work, no metrics) runs too, so that the gateway's own cost and hyper's are told apart.
On a small shared machine the ratios are the figure to read; absolute numbers move with
whatever else runs. `--pin` puts every proxy on CPU 0 and wrk and the upstream on CPU 1, which
keeps the scheduler's placement out of the result and steadies the figures.

Besides the ratio of the medians, each ratio is also taken round by round (gateway and nginx
run back to back in a round, under much the same conditions) and printed with its spread over
the rounds: when single rounds range from 0.7 to 1.3, a ratio of medians near 1 says the two are
level within this machine's noise, not that one is ahead.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port} after {timeout}s")


def ensure_tools():
    missing = [pkg for cmd, pkg in (("wrk", "wrk"), ("nginx", "nginx-light")) if not shutil.which(cmd)]
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def build():
    examples = ["gateway", "bench_upstream", "bench_bare_proxy"]
    subprocess.run(["cargo", "build", "--release"] + [arg for name in examples for arg in ("--example", name)],
                   cwd=ROOT, check=True)
    return [os.path.join(ROOT, "target/release/examples", name) for name in examples]


# Every target the harness can drive, in the order each round starts from.
TARGETS = ["direct", "gateway", "nginx", "nginx+hdr", "bare"]

# CPU affinity prefixes, set by --pin: the proxy under test alone on one core, the load
# generator and the upstream on the other.
PROXY_CPU = []
LOAD_CPU = []


# What the gateway adds to every request and response (forwarding headers, a request id both
# ways, Via), for the nginx run that does the same work as the gateway.
NGINX_GATEWAY_HEADERS = """
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header Via "1.1 nginx";
            add_header X-Request-Id $request_id;
            add_header Via "1.1 nginx";"""


def start_nginx(workdir, port, upstream_port, name="nginx", gateway_headers=False):
    workdir = os.path.join(workdir, name)
    os.makedirs(workdir, exist_ok=True)
    conf = os.path.join(workdir, "nginx.conf")
    extra = NGINX_GATEWAY_HEADERS if gateway_headers else ""
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    upstream agent {{
        server 127.0.0.1:{upstream_port};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://agent;
            proxy_http_version 1.1;
            proxy_set_header Connection "";{extra}
        }}
    }}
}}
""")
    return subprocess.Popen(PROXY_CPU + ["nginx", "-c", conf, "-p", workdir], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def start_gateway(binary, workdir, port, upstream_port, workers):
    conf = os.path.join(workdir, "gateway.toml")
    with open(conf, "w") as f:
        f.write(f"""
listen = "127.0.0.1:{port}"
workers = {workers}
shutdown_grace = "1s"
[upstreams.agent]
url = "http://127.0.0.1:{upstream_port}"
max_idle = 256
[[routes]]
name = "agent"
prefix = "/"
upstream = "agent"
""")
    return subprocess.Popen(PROXY_CPU + [binary, "--config", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, RUST_LOG="warn"))


def to_ms(value):
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def process_tree(pid):
    """`pid` and its descendants (nginx's workers are children of its master)."""
    pids = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children = f.read().split()
        except OSError:
            continue
        for child in children:
            pids.extend(process_tree(int(child)))
    return pids


def cpu_seconds(pid):
    """User and system CPU time used so far by a process and its descendants, all threads."""
    user = system = 0
    for each in process_tree(pid):
        try:
            with open(f"/proc/{each}/stat") as f:
                # Fields after the command name, which may hold spaces: utime and stime are
                # the 14th and 15th fields of the line, the 12th and 13th after the name.
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


def run_wrk(url, duration, connections, pid):
    """Drives `url` with wrk; also measures the CPU that process `pid` spent per request."""
    user_before, system_before = cpu_seconds(pid)
    out = subprocess.run(LOAD_CPU + ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--latency", url],
                         check=True, capture_output=True, text=True).stdout
    user_after, system_after = cpu_seconds(pid)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} non-2xx responses\n{out}")
    # Connect, read, write or timeout errors mean requests that never got an answer.
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        sys.exit(f"{url}: socket errors ({socket_errors.group(1)})\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    per_request = 1e6 / max(requests, 1)
    user_us = (user_after - user_before) * per_request
    system_us = (system_after - system_before) * per_request
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99,
            "cpu_us": user_us + system_us, "user_us": user_us, "sys_us": system_us}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway runtime threads (nginx runs one worker process)")
    parser.add_argument("--pin", action="store_true",
                        help="proxies on CPU 0, wrk and the upstream on CPU 1 (needs two CPUs)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated subset of {','.join(TARGETS)} (default: all)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown or not chosen:
        sys.exit(f"--targets: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(TARGETS)}")
    if args.pin:
        PROXY_CPU.extend(["taskset", "-c", "0"])
        LOAD_CPU.extend(["taskset", "-c", "1"])

    ensure_tools()
    gateway_bin, upstream_bin, bare_bin = build()
    workdir = tempfile.mkdtemp(prefix="rampart-load-")
    upstream_port, gateway_port, nginx_port = free_port(), free_port(), free_port()
    nginx_headers_port, bare_port = free_port(), free_port()

    upstream = subprocess.Popen(LOAD_CPU + [upstream_bin, f"127.0.0.1:{upstream_port}"])
    processes = [upstream]
    try:
        wait_port(upstream_port)
        gateway = start_gateway(gateway_bin, workdir, gateway_port, upstream_port, args.workers)
        nginx = start_nginx(workdir, nginx_port, upstream_port)
        nginx_headers = start_nginx(workdir, nginx_headers_port, upstream_port, "nginx-headers",
                                    gateway_headers=True)
        bare = subprocess.Popen(PROXY_CPU + [bare_bin, f"127.0.0.1:{bare_port}", f"127.0.0.1:{upstream_port}"])
        processes.extend([gateway, nginx, nginx_headers, bare])
        wait_port(gateway_port)
        wait_port(nginx_port)
        wait_port(nginx_headers_port)
        wait_port(bare_port)

        # Each target's URL, and the process whose CPU time is charged to it: the upstream
        # itself for "direct", else the proxy in front of it.
        every_target = {
            "direct": (f"http://127.0.0.1:{upstream_port}/", upstream.pid),
            "gateway": (f"http://127.0.0.1:{gateway_port}/", gateway.pid),
            "nginx": (f"http://127.0.0.1:{nginx_port}/", nginx.pid),
            # nginx also setting the headers the gateway sets: the same work per request.
            "nginx+hdr": (f"http://127.0.0.1:{nginx_headers_port}/", nginx_headers.pid),
            # hyper with nothing of the gateway around it: the floor of a hyper proxy.
            "bare": (f"http://127.0.0.1:{bare_port}/", bare.pid),
        }
        targets = {name: every_target[name] for name in TARGETS if name in chosen}
        # Warm every path once so pools and caches are filled before measuring.
        for url, pid in targets.values():
            run_wrk(url, 1, args.connections, pid)

        results = {name: [] for name in targets}
        order = list(targets)
        for round_no in range(args.rounds):
            # Rotate the order each round so no target always runs first or last.
            turn = round_no % len(order)
            for name in order[turn:] + order[:turn]:
                url, pid = targets[name]
                result = run_wrk(url, args.duration, args.connections, pid)
                results[name].append(result)
                print(f"round {round_no + 1} {name:9} {result['rps']:>10.0f} req/s  "
                      f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  "
                      f"cpu {result['cpu_us']:.2f} us/req (user {result['user_us']:.2f}, "
                      f"sys {result['sys_us']:.2f})", flush=True)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)

    median = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
              for name, runs in results.items()}
    pinned = ", pinned" if args.pin else ""
    print(f"\nmedians over {args.rounds} rounds, wrk -t1 -c{args.connections} -d{args.duration}s{pinned}:")
    print(f"{'target':9} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu us':>7} {'user us':>8} {'sys us':>7}")
    for name, m in median.items():
        print(f"{name:9} {m['rps']:>10.0f} {m['p50_ms']:>8.3f} {m['p99_ms']:>8.3f} "
              f"{m['cpu_us']:>7.2f} {m['user_us']:>8.2f} {m['sys_us']:>7.2f}")
    # Each ratio: one target's figure over another's. CPU per request is that of the process
    # behind the target: above 1 costs more than nginx. It is steadier than req/s on a shared
    # machine, and the user/system split shows where a gap lies.
    short = {"rps": "rps", "p99_ms": "p99", "p50_ms": "p50", "cpu_us": "cpu", "user_us": "user",
             "sys_us": "sys"}
    compared = [
        ("gateway", "direct", "rps"),
        ("gateway", "nginx", "rps"), ("gateway", "nginx", "p99_ms"), ("gateway", "nginx", "p50_ms"),
        ("gateway", "nginx+hdr", "rps"), ("gateway", "nginx+hdr", "p99_ms"),
        ("gateway", "bare", "rps"),
        ("bare", "nginx", "rps"),
        ("gateway", "nginx", "cpu_us"), ("gateway", "nginx", "user_us"), ("gateway", "nginx", "sys_us"),
        ("gateway", "nginx+hdr", "cpu_us"),
        ("bare", "nginx", "cpu_us"),
    ]
    compared = [(top, bottom, figure) for top, bottom, figure in compared
                if top in median and bottom in median]
    ratios = {f"{top}/{bottom} {short[figure]}": median[top][figure] / median[bottom][figure]
              for top, bottom, figure in compared}
    # The same ratios round by round: their spread is how far one round can be trusted.
    per_round = {f"{top}/{bottom} {short[figure]}": [mine[figure] / theirs[figure] for mine, theirs
                                                    in zip(results[top], results[bottom])]
                 for top, bottom, figure in compared}
    print(f"\n{'ratio':22} {'of medians':>10} {'round by round: median':>23} {'min':>5} {'max':>5}")
    for key, value in ratios.items():
        rounds = per_round[key]
        print(f"{key:22} {value:>10.2f} {statistics.median(rounds):>23.2f} {min(rounds):>5.2f} "
              f"{max(rounds):>5.2f}")

    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    with open(os.path.join(ROOT, f"bench/results/load-{stamp}.json"), "w") as f:
        json.dump({"args": vars(args), "runs": results, "median": median, "ratios": ratios,
                   "ratios_by_round": per_round}, f, indent=2)


if __name__ == "__main__":
    main()
