"""Residual-quantizer encoding through tables (use_beam_LUT), nearly beside
faiss on the same data, the same thread count, in the same run.

    python bench/rq_beam_lut.py [--threads 2] [--keys 1x8_7x8 1x12_4x8] [--ntrain 20000]

Data: ../shared/data (100k MiniLM embeddings, 384-d). For each key (groups
of {M}x{nbits}, as in "RQ{key}"), each library trains a residual quantizer
(plain k-means per codebook, Train_default, the default beam of 5) on the
first --ntrain base vectors, then encodes the whole base with use_beam_LUT
0 (the beam on d-dimensional residuals) and 1 (the beam through the
query's <x, word> table and the codebooks' cross products). Reported: the
encoding seconds (best of 2), the fraction of codes equal to the residual
beam's, and the mean squared reconstruction error.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import libraries, load_real, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def widths(key):
    out = []
    for group in key.split("_"):
        count, bits = group.split("x")
        out += [int(bits)] * int(count)
    return out


def make(lib, d, w):
    if lib.__name__ == "faiss":
        v = lib.UInt64Vector()
        for b in w:
            v.push_back(b)
        return lib.ResidualQuantizer(d, v)
    return lib.ResidualQuantizer(d, w)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--keys", nargs="+", default=["8x8", "1x12_4x8"])
    ap.add_argument("--ntrain", type=int, default=20_000)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "rq_beam_lut.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb = np.ascontiguousarray(load_real()[0])
    d = xb.shape[1]
    rows = []
    for key in args.keys:
        row = {"key": key}
        for lib in (nearly, faiss):
            rq = make(lib, d, widths(key))
            rq.train_type = 0
            t = time.perf_counter()
            rq.train(xb[:args.ntrain])
            train_s = time.perf_counter() - t
            out = {"train_s": train_s}
            ref = None
            for lut in (0, 1):
                rq.use_beam_LUT = lut
                best = float("inf")
                for _ in range(2):
                    t = time.perf_counter()
                    codes = rq.compute_codes(xb)
                    best = min(best, time.perf_counter() - t)
                mse = float(((xb - rq.decode(codes)) ** 2).sum(1).mean())
                same = None if ref is None else float((codes == ref).all(axis=1).mean())
                ref = codes if ref is None else ref
                out[f"lut{lut}"] = {"encode_s": best, "mse": mse, "same_codes_as_lut0": same}
            row[lib.__name__] = out
            print(f"RQ{key:10s} {lib.__name__:6s} train {train_s:6.1f} s  encode lut0 {out['lut0']['encode_s']:6.2f} s"
                  f"  lut1 {out['lut1']['encode_s']:6.2f} s  mse {out['lut0']['mse']:.4f} / {out['lut1']['mse']:.4f}"
                  f"  same codes {out['lut1']['same_codes_as_lut0']:.4f}", flush=True)
        rows.append(row)
    write_results(args.out, {"command": "python bench/rq_beam_lut.py --threads %d --keys %s --ntrain %d" % (
        args.threads, " ".join(args.keys), args.ntrain), "threads": args.threads, "n": len(xb), "d": d,
        "ntrain": args.ntrain, "data": "pypi-minilm-100k", "rows": rows})


if __name__ == "__main__":
    main()
