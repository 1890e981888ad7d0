"""Particles in a time-periodic cellular flow and their effective diffusivity (Chapter 1, (1.1)-(1.3)).

A diffusing particle in the two-dimensional incompressible flow

    v(X, t) = (cos y, cos x) + theta * cos(t) * (sin y, sin x),      theta in [0, 1]     (1.1)

moves by the SDE

    dX_t = v(X_t, t) dt + sqrt(2 D0) dW_t                                                  (1.2)

and its effective diffusivity in the unit direction e is the large-time limit

    D^E = lim_{t -> oo} E |(X(t) - X(0)) . e|^2 / (2 t).                                   (1.3)

The thesis prints (1.3) without the factor 2; with it, zero flow gives D^E = D0 exactly (the
convention of the cited homogenization literature, under which D^E >= D0), and that is what this
module computes.

The flow is Hamiltonian, v = (dH/dy, -dH/dx) with H = sin y - sin x + theta cos t (cos x - cos y),
and its x-component depends on (y, t) only, its y-component on (x, t) only. The default integrator
is therefore a *structure-preserving splitting* in the spirit of Wang, Xin and Zhang (2018): each
step is a Stoermer-Verlet (Strang) composition of the two exact shear maps
x += dt/2 u(y), y += dt w(x), x += dt/2 u(y) (time frozen at the mid-point), which is symplectic,
hence exactly area preserving as the flow is, followed by the exact solution of the noise part,
X += sqrt(2 D0 dt) N(0, I). Euler-Maruyama (``scheme="euler"``) is kept for comparison: it does not
preserve area and its error accumulates over the long times (t ~ 1/D0) that (1.3) needs.

Everything is vectorised over particles and over a batch of (D0, theta) pairs, so one call
integrates a whole curve D^E(D0) at once.
"""

from __future__ import annotations

import numpy as np

FLOWS = ("cellular", "shear", "none")
SCHEMES = ("splitting", "euler")


def velocity(x, y, t, theta=0.0, flow: str = "cellular"):
    """The velocity field (u, w) at points (x, y) and time t.

    ``flow="cellular"``: the time-periodic cellular flow (1.1); ``"shear"``: the shear flow
    (sin y, 0) (closed-form D^E, used as a test); ``"none"``: zero flow (pure diffusion).
    """
    if flow == "cellular":
        c = theta * np.cos(t)
        return np.cos(y) + c * np.sin(y), np.cos(x) + c * np.sin(x)
    if flow == "shear":
        return np.sin(y), np.zeros_like(x)
    if flow == "none":
        return np.zeros_like(x), np.zeros_like(y)
    raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}")


def _u(y, t, theta, flow):
    """x-velocity: depends on (y, t) only."""
    if flow == "cellular":
        return np.cos(y) + theta * np.cos(t) * np.sin(y)
    if flow == "shear":
        return np.sin(y)
    return 0.0


def _w(x, t, theta, flow):
    """y-velocity: depends on (x, t) only."""
    if flow == "cellular":
        return np.cos(x) + theta * np.cos(t) * np.sin(x)
    return 0.0


def splitting_step(x, y, t: float, dt: float, theta=0.0, flow: str = "cellular"):
    """One deterministic step of the structure-preserving scheme: the Stoermer-Verlet composition
    x += dt/2 u(y), y += dt w(x), x += dt/2 u(y), time frozen at t + dt/2. Each sub-step is an
    exact shear, so the map is symplectic (area preserving) like the flow (1.1) itself."""
    tm = t + 0.5 * dt
    x = x + 0.5 * dt * _u(y, tm, theta, flow)
    y = y + dt * _w(x, tm, theta, flow)
    x = x + 0.5 * dt * _u(y, tm, theta, flow)
    return x, y


def euler_step(x, y, t: float, dt: float, theta=0.0, flow: str = "cellular"):
    """One deterministic forward-Euler step (the drift of Euler-Maruyama): not area preserving."""
    return x + dt * _u(y, t, theta, flow), y + dt * _w(x, t, theta, flow)


def _check(d0, theta, t_end, dt, n_particles, scheme, flow):
    d0 = np.atleast_1d(np.asarray(d0, dtype=float))
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    if d0.ndim != 1 or theta.ndim != 1:
        raise ValueError("d0 and theta must be scalars or 1-D sequences")
    if len(theta) == 1 and len(d0) > 1:
        theta = np.full_like(d0, theta[0])
    if len(d0) == 1 and len(theta) > 1:
        d0 = np.full_like(theta, d0[0])
    if len(d0) != len(theta):
        raise ValueError(f"d0 and theta must have equal lengths (or one be a scalar), got {len(d0)} and {len(theta)}")
    if not np.all(d0 > 0) or not np.all(np.isfinite(d0)):
        raise ValueError(f"d0 (molecular diffusivity D0) must be finite and > 0, got {d0.tolist()}")
    if not np.all((theta >= 0) & (theta <= 1)):
        raise ValueError(f"theta must lie in [0, 1], got {theta.tolist()}")
    if not (np.isfinite(t_end) and t_end > 0):
        raise ValueError(f"t_end must be finite and > 0, got {t_end!r}")
    if not (0 < dt <= t_end):
        raise ValueError(f"dt must be in (0, t_end={t_end}], got {dt!r}")
    if int(n_particles) != n_particles or n_particles < 2:
        raise ValueError(f"n_particles must be an integer >= 2, got {n_particles!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if flow not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}")
    return d0, theta


def simulate(d0, theta=0.0, t_end: float = 100.0, dt: float = 0.05, n_particles: int = 1000, seed: int = 0,
             scheme: str = "splitting", flow: str = "cellular", n_records: int = 10):
    """Integrate the SDE (1.2) for ``n_particles`` particles per (D0, theta) pair.

    ``d0`` and ``theta`` are scalars or equal-length 1-D sequences (one configuration per entry).
    Particles start uniformly in the period cell [0, 2 pi)^2 (the invariant measure of the flow,
    which removes the initial-position transient) and are tracked in R^2, not modulo the period.

    Returns ``(times, displacements)``: ``times`` (n_records,) are the record times (the last is
    ``t_end``), ``displacements`` (n_records, K, n_particles, 2) are X(t) - X(0).
    """
    d0, theta = _check(d0, theta, t_end, dt, n_particles, scheme, flow)
    if int(n_records) != n_records or n_records < 1:
        raise ValueError(f"n_records must be an integer >= 1, got {n_records!r}")
    n_steps = int(round(t_end / dt))
    dt = t_end / n_steps
    record_at = set(np.unique(np.linspace(n_steps / n_records, n_steps, n_records).round().astype(int)).tolist())
    rng = np.random.default_rng(seed)
    k = len(d0)
    x0 = rng.uniform(0, 2 * np.pi, (k, n_particles))
    y0 = rng.uniform(0, 2 * np.pi, (k, n_particles))
    x, y = x0.copy(), y0.copy()
    th = theta[:, None]
    sigma = np.sqrt(2 * d0 * dt)[:, None]
    times, out = [], []
    for n in range(n_steps):
        t = n * dt
        step = splitting_step if scheme == "splitting" else euler_step
        x, y = step(x, y, t, dt, th, flow)
        x += sigma * rng.standard_normal((k, n_particles))
        y += sigma * rng.standard_normal((k, n_particles))
        if n + 1 in record_at:
            times.append((n + 1) * dt)
            out.append(np.stack([x - x0, y - y0], axis=-1))
    return np.array(times), np.stack(out)


def effective_diffusivity(d0, theta=0.0, t_end: float = 100.0, dt: float = 0.05, n_particles: int = 1000,
                          seed: int = 0, direction=(1.0, 0.0), scheme: str = "splitting", flow: str = "cellular",
                          n_records: int = 10) -> dict:
    """Monte Carlo estimate of D^E (1.3) in ``direction`` with a standard error, per (D0, theta).

    D^E(t) = mean_i |(X_i(t) - X_i(0)) . e|^2 / (2 t); its error bar is the standard error of that
    mean over the independent particles (time discretisation and finite-t bias come on top and are
    checked separately: see the tests against the closed forms). Returns plain lists:
    ``{"d0", "theta", "times", "de" (K values at t_end), "stderr", "de_t" (n_records x K)}``.
    """
    e = np.asarray(direction, dtype=float)
    if e.shape != (2,) or not np.isclose(np.linalg.norm(e), 1.0):
        raise ValueError(f"direction must be a unit 2-vector, got {direction!r}")
    d0v, thv = _check(d0, theta, t_end, dt, n_particles, scheme, flow)
    times, disp = simulate(d0v, thv, t_end, dt, n_particles, seed, scheme, flow, n_records)
    sq = (disp @ e) ** 2 / (2 * times[:, None, None])
    de_t = sq.mean(-1)
    stderr = sq[-1].std(-1, ddof=1) / np.sqrt(n_particles)
    return {"d0": d0v.tolist(), "theta": thv.tolist(), "times": times.tolist(), "de": de_t[-1].tolist(),
            "stderr": stderr.tolist(), "de_t": de_t.tolist()}


def shear_diffusivity(d0: float, t: float | None = None) -> float:
    """Closed form of D^E in x for the shear flow (sin y, 0) with y started uniformly.

    x(t) - x(0) = int_0^t sin y(s) ds + sqrt(2 D0) W_x(t) and E[sin y(0) sin y(s)] = exp(-D0 s) / 2,
    so E|x(t) - x(0)|^2 / (2 t) = D0 + (1 / (2 D0)) (1 - (1 - exp(-D0 t)) / (D0 t)), which tends to
    D0 + 1 / (2 D0) as t -> oo (``t=None``).
    """
    if not d0 > 0:
        raise ValueError(f"d0 must be > 0, got {d0!r}")
    if t is None:
        return d0 + 1 / (2 * d0)
    if not t > 0:
        raise ValueError(f"t must be > 0, got {t!r}")
    return d0 + (1 - (1 - np.exp(-d0 * t)) / (d0 * t)) / (2 * d0)


def loglog_slope(d0, de) -> float:
    """Least-squares slope of log D^E against log D0 (0.5 for O(sqrt(D0)), 0 for residual diffusivity)."""
    d0, de = np.asarray(d0, float), np.asarray(de, float)
    if d0.shape != de.shape or d0.size < 2 or np.any(d0 <= 0) or np.any(de <= 0):
        raise ValueError("d0 and de must be equal-length arrays of >= 2 positive values")
    return float(np.polyfit(np.log(d0), np.log(de), 1)[0])
