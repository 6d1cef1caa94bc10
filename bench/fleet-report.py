#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/fleet's arithmetic: figures of one phase from the Key Protect emulator's request log
(GET /_emu/log), or (--plot) the request rate over time of several steady-state phases as a
PNG. Reads only what it is given; never talks to the emulator."""
import argparse
import json
import sys


def in_window(log, t0, t1):
    return [e for e in log if t0 <= e["t"] <= t1]


def peak(times, width=1.0):
    """Most events in any window of @width seconds (a sliding window over sorted times)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def series(times, t0, t1, step=1.0):
    n = max(1, int((t1 - t0) / step + 0.999))
    out = [0] * n
    for t in times:
        out[min(n - 1, int((t - t0) / step))] += 1
    return [c / step for c in out]


def phase(args):
    log = json.load(open(args.log[0]))
    win = in_window(log, args.t_from, args.t_to)
    kp = [e for e in win if e["path"].startswith("/api/v2/")]
    iam = [e for e in win if e.get("iam")]
    ok = sorted(e["t"] for e in kp if e["status"] is not None and 200 <= e["status"] < 300)
    throttled = [e for e in kp if e["status"] == 429]
    other = [e for e in kp if e["status"] is not None and e["status"] >= 300
             and e["status"] != 429]
    times = sorted(e["t"] for e in kp)
    unwraps = sorted(e["t"] for e in kp if e["path"].endswith("/actions/unwrap")
                     and e["status"] == 200)
    fig = {
        "kind": args.kind, "jitter_pct": args.jitter, "hosts": args.hosts,
        "rate_limit": args.rate, "seconds": round(args.t_to - args.t_from, 2),
        "kp_requests": len(kp), "kp_ok": len(ok), "kp_429": len(throttled),
        "kp_other_errors": len(other), "iam_requests": len(iam),
        "peak_offered_per_s": peak(times), "peak_served_per_s": peak(ok),
        "kp_requests_per_host": round(len(kp) / args.hosts, 2),
        "kp_ok_per_host": round(len(ok) / args.hosts, 2),
        "first_request_s": round(times[0] - args.t_from, 2) if times else None,
        "last_unwrap_s": round(unwraps[-1] - args.t_from, 2) if unwraps else None,
        "unwraps_served": len(unwraps),
        "rewraps_served": len([e for e in kp if e["path"].endswith("/actions/rewrap")
                               and e["status"] == 200]),
        "series_t0": args.t_from,
        "offered_per_s": series(times, args.t_from, args.t_to),
        "served_per_s": series(ok, args.t_from, args.t_to),
    }
    print("%s (poll_jitter_pct %d): %d Key Protect requests (%d served, %d answered 429, "
          "%d other errors), %d IAM; peak %d requests/s offered, %d served (limit %g, "
          "+10%% = %g); %.2f served requests per host"
          % (args.kind, args.jitter, len(kp), len(ok), len(throttled), len(other), len(iam),
             fig["peak_offered_per_s"], fig["peak_served_per_s"], args.rate,
             args.rate * 1.1, fig["kp_ok_per_host"]))
    if fig["rewraps_served"]:
        print("%s: %d rewraps served (%.2f per host)" % (args.kind, fig["rewraps_served"],
                                                         fig["rewraps_served"] / args.hosts))
    if unwraps:
        print("%s: first request at %.2f s, last of %d unwraps served at %.2f s: %.2f s of "
              "KMS time for a bound of %.2f s" % (args.kind, fig["first_request_s"],
                                                  len(unwraps), fig["last_unwrap_s"],
                                                  fig["last_unwrap_s"] - fig["first_request_s"],
                                                  len(unwraps) / args.rate))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(fig, f, indent=1)


def plot(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figs = [json.load(open(p)) for p in args.log]
    fig, axes = plt.subplots(len(figs), 1, figsize=(9, 2.6 * len(figs)), sharex=True,
                             squeeze=False)
    for ax, f in zip(axes[:, 0], figs):
        xs = list(range(len(f["offered_per_s"])))
        ax.step(xs, f["offered_per_s"], where="post", label="requests/s (all)")
        ax.step(xs, f["served_per_s"], where="post", label="served (2xx)")
        ax.axhline(args.rate, color="red", linestyle="--", label="KMS limit")
        ax.set_title("%d hosts, poll every %s, poll_jitter_pct %d: %d requests, %d × 429"
                     % (f["hosts"], f.get("poll", "10 s"), f["jitter_pct"],
                        f["kp_requests"], f["kp_429"]), fontsize=9)
        ax.set_ylabel("requests / s")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds into the steady state (1 s bins)")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log", nargs="+")
    ap.add_argument("--kind", default="phase")
    ap.add_argument("--jitter", type=int, default=0)
    ap.add_argument("--from", dest="t_from", type=float, default=0.0)
    ap.add_argument("--to", dest="t_to", type=float, default=float("inf"))
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--hosts", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--plot")
    args = ap.parse_args()
    if args.plot:
        plot(args)
    else:
        phase(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
