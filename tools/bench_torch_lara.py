# Timing of the official LinearRA attention core (eval, 1-D segment means, mis-opt), transcribed
# op for op from the official lara.py forward, for docs/performance.md: one thread, float32.
# python3 tools/bench_torch_lara.py (needs torch)
import sys, time, torch
torch.set_num_threads(1)
def prm(x, w, scale):  # prm_projection(x, w, normalize=False): [b,h,c,n]
    return scale * (torch.einsum('...nd,...cd->...cn', x, w) - (x**2).sum(-1).unsqueeze(-2) / 2)
def lara(q, k, v, C):
    b, h, n, d = q.shape; scale = d ** -0.5
    q_bar = q.reshape(b, h, C, n // C, d).mean(-2); k_bar = k.reshape(b, h, C, n // C, d).mean(-2)
    mu = q_bar + k_bar; weights = mu
    log_proj_q = prm(q, weights, scale); log_proj_k = prm(k, weights, scale)
    kv = torch.einsum('...cm,...md->...cd', torch.softmax(log_proj_k, -1), v)
    t = torch.softmax(torch.einsum('...cd,...nd->...cn', scale * q_bar, q), -1)
    lpm = prm(mu, weights, scale)
    lp = torch.diagonal(lpm, dim1=-1, dim2=-2).unsqueeze(-1)
    bh = torch.exp(lp - torch.logsumexp(lpm, -1, keepdim=True))
    la = torch.log((bh + 1.0 * (t - t.mean(-2, keepdim=True))).clamp(min=1e-8))
    liw = la + log_proj_q + torch.logsumexp(log_proj_k, -1, keepdim=True) - lp
    return torch.einsum('...cn,...cd->...nd', torch.softmax(liw, -2), kv)
def exact(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, -1) @ v
for n in [1024, 4096]:
    q, k, v = (torch.randn(1, 1, n, 64) * 0.5 for _ in range(3))
    for name, f in [('lara', lambda: lara(q, k, v, 64)), ('exact', lambda: exact(q, k, v))]:
        with torch.no_grad():
            f(); ts = []
            for _ in range(15):
                t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
        ts.sort(); print(f"torch {name} n={n} d=64 C=64: {ts[len(ts)//2]*1e3:.3f} ms (median of 15, 1 thread, torch {torch.__version__})")
